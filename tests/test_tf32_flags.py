"""minicnn.tf32 / set_float32_matmul_precision (PyTorch's TF32 switches) without a GPU:
the flags, and which flag each of the cupy backend's products reads."""

from __future__ import annotations

import pytest

from minicnn import backend


@pytest.fixture(autouse=True)
def _restore_flags():
    saved = (backend.tf32.matmul, backend.tf32.conv)
    yield
    backend.tf32.matmul, backend.tf32.conv = saved


def test_defaults_are_pytorchs():
    """PyTorch's defaults: TF32 for the convolutions (cudnn.allow_tf32), exact FP32 for matmul."""
    import subprocess
    import sys

    code = "from minicnn import backend; print(backend.tf32.matmul, backend.tf32.conv)"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert fresh == ["False", "True"]
    assert backend.get_float32_matmul_precision() == "highest"


def test_matmul_precision_sets_the_matmul_flag_only():
    for conv in (True, False):
        backend.tf32.conv = conv
        backend.set_float32_matmul_precision("high")
        assert backend.tf32.matmul and backend.tf32.conv == conv
    assert backend.get_float32_matmul_precision() == "high"
    backend.set_float32_matmul_precision("medium")
    assert backend.tf32.matmul
    backend.set_float32_matmul_precision("highest")
    assert not backend.tf32.matmul
    with pytest.raises(ValueError, match="expected one of"):
        backend.set_float32_matmul_precision("low")


@pytest.mark.parametrize("matmul_flag,conv_flag", [(False, False), (True, False), (False, True), (True, True)])
def test_each_product_reads_its_own_flag(monkeypatch, matmul_flag, conv_flag):
    from minicnn.kernels import cuda
    from minicnn.kernels.cuda import gemm, launch

    seen = []
    monkeypatch.setattr(launch, "_on_device", lambda a: True)
    monkeypatch.setattr(gemm, "matmul", lambda a, b, out=None, tf32=False: seen.append(tf32))
    backend.tf32.matmul, backend.tf32.conv = matmul_flag, conv_flag
    cuda.matmul("a", "b")               # Linear and other products
    cuda.CONV_SCHEDULE.ops.matmul("a", "b")  # the convolutions' products
    assert seen == [matmul_flag, conv_flag]
    assert cuda.TABLE["matmul"] is cuda.matmul
