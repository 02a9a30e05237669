"""``bash benchmarks/gpu_check.sh`` without a GPU (issue 14 item 17): one line, exit 1, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def gpu_usable() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.skipif(gpu_usable(), reason="a GPU is usable here: gpu_check.sh would run its checks")
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_without_a_gpu_stops_at_once_with_one_line(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no usable CUDA GPU here (")
    assert "Traceback" not in r.stderr and not out.exists()


def _run(args, env_extra, tmp_path, timeout=600):  # a hang guard: a starved machine took > 120 s
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], **env_extra}
    return subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_plan_fits_one_device_call(tmp_path):
    """--plan lists the steps in order (tests first, then the A/Bs that decide the defaults) and
    their files: with the two copied JSON files at most 8, the most a device call brings back."""
    r = _run(["--plan"], {"GPU_CHECK_BUDGET": "540"}, tmp_path)
    assert r.returncode == 0, r.stderr
    steps = [line.split(None, 3) for line in r.stdout.splitlines()[1:]]
    assert [s[2] for s in steps][:2] == ["gpu_tests.log", "ab.log"] and "tf32-conv" in steps[1][3]
    files = {s[2] for s in steps} | {"throughput.json", "task2_results.json"}
    assert len(files) <= 8, files
    assert "budget 540 s" in r.stdout.splitlines()[0]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_keeps_to_its_budget(tmp_path):
    """With a fake CuPy that reports a device and a budget too small for any step, every step
    says it was skipped, in its own file, and the exit status is 1 (the check is not complete)."""
    fake = tmp_path / "fake" / "cupy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = 'fake'\n"
                                      "class cuda:\n    class runtime:\n"
                                      "        @staticmethod\n        def getDeviceCount():\n            return 1\n")
    out = tmp_path / "out"
    r = _run([], {"OUT": str(out), "GPU_CHECK_BUDGET": "3", "PYTHONPATH": str(fake.parent)}, tmp_path)
    assert r.returncode == 1
    written = sorted(p.name for p in out.iterdir())
    assert written == ["ab.log", "gpu_tests.log", "profile.log", "task2.log", "throughput.log"]
    text = {name: (out / name).read_text() for name in written}
    assert text["gpu_tests.log"].count("skipped: ") == 1 and "gpu_check: budget 3 s" in text["gpu_tests.log"]
    assert text["ab.log"].count("skipped: ") == 7 and text["profile.log"].count("skipped: ") == 5
    assert "gpu_check: exit status 1" in text["gpu_tests.log"]
