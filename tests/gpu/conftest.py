"""GPU tests run with exact FP32 products unless they set the TF32 switches themselves
(tests/gpu/test_tf32.py): minicnn's default, like PyTorch's, lets the convolutions use
TF32, and these tests compare float32 results with NumPy's bit for bit or within FP32
rounding."""

from __future__ import annotations

import pytest

from minicnn import backend


@pytest.fixture(autouse=True)
def _exact_fp32_products():
    saved = (backend.tf32.matmul, backend.tf32.conv)
    backend.tf32.matmul = backend.tf32.conv = False
    yield
    backend.tf32.matmul, backend.tf32.conv = saved
