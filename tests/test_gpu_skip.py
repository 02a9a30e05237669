"""tests/conftest.py says why the GPU tests cannot run here (no CuPy, a broken
driver, no device), so that they skip with that reason instead of failing."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


@pytest.fixture
def gpu_conftest():
    spec = importlib.util.spec_from_file_location("gpu_conftest_under_test", CONFTEST)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_cupy(count):
    def get_device_count():
        if isinstance(count, Exception):
            raise count
        return count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))


@pytest.mark.parametrize("count,why", [
    (RuntimeError("cudaErrorInsufficientDriver"), "CuPy cannot use a CUDA device: cudaErrorInsufficientDriver"),
    (0, "no CUDA device"),
    (1, None),
])
def test_reason_for_each_missing_piece(monkeypatch, gpu_conftest, count, why):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count))
    assert gpu_conftest._why_no_gpu() == why


def test_without_cupy(monkeypatch, gpu_conftest):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    assert gpu_conftest._why_no_gpu() == "CuPy is not installed"
