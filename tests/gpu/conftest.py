"""Every test under tests/gpu needs CuPy and a usable CUDA device: each is marked
``gpu`` and skipped, with the reason, when either is missing. (Each module still starts
with ``cupy = pytest.importorskip("cupy", ...)``, for its own use of CuPy at import.)"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _why_no_gpu() -> str | None:
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, broken install
        return f"CuPy cannot use a CUDA device: {e}"
    return None if n > 0 else "no CUDA device"


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if HERE in Path(item.path).resolve().parents]
    if not mine:
        return
    why = _why_no_gpu()
    for item in mine:
        item.add_marker(pytest.mark.gpu)
        if why:
            item.add_marker(pytest.mark.skip(reason=why))
