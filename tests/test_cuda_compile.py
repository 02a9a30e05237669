"""The CUDA sources compile, and the loader builds them the way NVRTC needs.

* nvcc (``-ptx``, sm_80 and sm_90, warnings are errors): the exact strings
  the loader hands to NVRTC, written into an empty folder so that any
  ``#include`` that NVRTC could not resolve fails here too, and the files as
  they lie on disk. The PTX must define every kernel the loader asks for,
  under its unmangled ``extern "C"`` name. Skipped when nvcc is not found
  (on PATH or in /usr/local/cuda/bin).
* NVRTC itself, when a libnvrtc is found (the CUDA toolkit's, or the
  ``nvidia-cuda-nvrtc`` wheel's); skipped otherwise.
* The loader without a GPU: importing it does not import CuPy, each source is
  compiled once per device and cached (a stand-in ``cupy`` module records the
  RawModule calls).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import itertools
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import minicnn.kernels.cuda as cuda_kernels

CUDA_DIR = Path(__file__).resolve().parents[1] / "kernels" / "cuda"
ARCHS = ("sm_80", "sm_90")


def expected_kernels() -> dict[str, set[str]]:
    """Every kernel name the loader can launch, by source file."""
    out = {name: set() for name in cuda_kernels.SOURCES}
    for s, ix in itertools.product(("f32", "f64"), ("i32", "i64")):
        out["conv"] |= {f"im2col_{s}_{ix}", f"col2im_{s}_{ix}"}
        out["pool"] |= {
            f"relu_maxpool2d_forward_{s}_{ix}",
            f"relu_maxpool2d_backward_{s}_{ix}",
            f"maxpool2d_forward_{s}_{ix}",
            f"maxpool2d_backward_{s}_{ix}",
            f"maxpool2d_backward_planes_{s}_{ix}",
            f"maxunpool2d_gather_{s}_{ix}",
            f"maxunpool2d_backward_{s}_{ix}",
            f"maxunpool2d_claim_{ix}",
        }
    for s in ("f32", "tf32", "f64"):
        out["conv_igemm"] |= {f"conv2d_igemm_{k}_m{bm}_{s}_{ix}" for k in ("forward", "input_grad", "weight_grad")
                              for bm in (16, 32, 64) for ix in ("i32", "i64")}
    for s in ("f32", "f64"):
        out["activation"] |= {
            f"{k}_{s}"
            for k in (
                "relu_forward",
                "relu_backward",
                "leaky_relu_forward",
                "leaky_relu_backward",
                "elu_forward",
                "elu_backward",
                "gelu_forward",
                "gelu_backward",
            )
        }
        out["optim"] |= {f"sgd_update_{s}", f"adam_update_{s}"}
        out["conv_igemm"] |= {f"igemm_sum_splits_{s}"}
    return out


def ptx_entries(ptx: str) -> set[str]:
    return set(re.findall(r"\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", ptx))


# --------------------------------------------------------------------------
# nvcc
# --------------------------------------------------------------------------


def find_nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for cand in ("/usr/local/cuda/bin/nvcc",):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def nvcc_command(nvcc: str, arch: str, files, outdir) -> list[str]:
    return [
        nvcc,
        "-ptx",
        f"-arch={arch}",
        "-Werror",
        "all-warnings",
        "-odir",
        str(outdir),
        *map(str, files),
    ]


@pytest.fixture(scope="module")
def nvcc_results(tmp_path_factory):
    """Run both nvcc jobs at once; {label: (cmd, returncode, output, {name: ptx})}."""
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (not on PATH, not /usr/local/cuda/bin/nvcc): CUDA sources not compiled")
    root = tmp_path_factory.mktemp("nvcc")
    # 1) what NVRTC gets: loader strings in a folder with no headers in it
    nvrtc_dir = root / "as_nvrtc_sees_it"
    nvrtc_dir.mkdir()
    nvrtc_files = []
    for name in cuda_kernels.SOURCES:
        f = nvrtc_dir / f"{name}.cu"
        f.write_text(cuda_kernels.kernel_source(name), encoding="utf-8")
        nvrtc_files.append(f)
    # 2) the files on disk, including common.cuh from their own folder
    disk_files = [CUDA_DIR / f"{name}.cu" for name in cuda_kernels.SOURCES]
    jobs = {}
    for label, arch, files in [
        ("loader_sources_sm_80", "sm_80", nvrtc_files),
        ("disk_files_sm_90", "sm_90", disk_files),
    ]:
        outdir = root / label
        outdir.mkdir()
        cmd = nvcc_command(nvcc, arch, files, outdir)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root)
        jobs[label] = (cmd, proc, outdir)
    results = {}
    for label, (cmd, proc, outdir) in jobs.items():
        output, _ = proc.communicate(timeout=300)
        ptx = {p.stem: p.read_text() for p in outdir.glob("*.ptx")}
        results[label] = (cmd, proc.returncode, output, ptx)
    return results


@pytest.mark.parametrize("label", ["loader_sources_sm_80", "disk_files_sm_90"])
def test_nvcc_compiles(nvcc_results, label):
    cmd, rc, output, ptx = nvcc_results[label]
    assert rc == 0, f"nvcc failed:\n{' '.join(cmd)}\n{output}"
    want = expected_kernels()
    for name in cuda_kernels.SOURCES:
        assert name in ptx, f"no PTX for {name}.cu:\n{output}"
        missing = want[name] - ptx_entries(ptx[name])
        assert not missing, f"{name}.cu: kernels missing from the PTX: {sorted(missing)}"


BLOCK_SOURCES = ("conv_igemm",)  # block kernels: shared memory and barriers, run by the host build's fibers


def test_sources_have_no_float_atomics_or_barriers():
    """Host emulation is only faithful without float atomics and warp-level operations anywhere,
    and without __syncthreads / shared memory outside the block kernels' sources (whose kernels
    the host build runs as block kernels: tests/test_cuda_host_igemm.py checks that)."""
    for name in cuda_kernels.SOURCES:
        text = (CUDA_DIR / f"{name}.cu").read_text()
        code = re.sub(r"//[^\n]*", "", text)
        banned = ("atomicAdd", "__syncwarp", "__shfl")
        if name not in BLOCK_SOURCES:
            banned += ("__syncthreads", "__shared__")
        for word in banned:
            assert word not in code, f"{name}.cu uses {word}"


# --------------------------------------------------------------------------
# NVRTC (optional)
# --------------------------------------------------------------------------


def find_libnvrtc() -> str | None:
    cands = []
    lib = ctypes.util.find_library("nvrtc")
    if lib:
        cands.append(lib)
    for pattern in (
        "/usr/local/cuda/lib64/libnvrtc.so*",
        "/usr/local/cuda/targets/*/lib/libnvrtc.so*",
        *(os.path.join(p, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*") for p in sys.path if p),
        *(os.path.join(p, "nvidia", "cu*", "lib", "libnvrtc.so*") for p in sys.path if p),
    ):
        cands += sorted(glob.glob(pattern))
    for cand in cands:
        if "builtins" in cand or "alt" in os.path.basename(cand):
            continue
        try:
            ctypes.CDLL(cand)
            return cand
        except OSError:
            continue
    return None


def nvrtc_compile(lib, source: str, name: str, options) -> tuple[int, str, str]:
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
    assert rc == 0, f"nvrtcCreateProgram: {rc}"
    try:
        opts = [o.encode() for o in options]
        arr = (ctypes.c_char_p * len(opts))(*opts)
        rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        ptx_text = ""
        if rc == 0:
            lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetPTX(prog, buf)
            ptx_text = buf.value.decode()
        return rc, log.value.decode(errors="replace"), ptx_text
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


@pytest.mark.parametrize("name", cuda_kernels.SOURCES)
def test_nvrtc_compiles_loader_source(name):
    path = find_libnvrtc()
    if path is None:
        pytest.skip("libnvrtc not found (CUDA toolkit lib64 or the nvidia-cuda-nvrtc wheel)")
    lib = ctypes.CDLL(path)
    options = (*cuda_kernels.NVRTC_OPTIONS[name], "--gpu-architecture=compute_80")
    rc, log, ptx = nvrtc_compile(lib, cuda_kernels.kernel_source(name), f"{name}.cu", options)
    assert rc == 0, f"NVRTC ({path}) failed on {name}.cu with {options}:\n{log}"
    missing = expected_kernels()[name] - ptx_entries(ptx)
    assert not missing, f"{name}.cu: kernels missing from NVRTC's PTX: {sorted(missing)}"
    # --fmad=false only for the optimiser (bit-for-bit with NumPy): no fused multiply-add in
    # its PTX. The activations are compiled without it, so NVRTC contracts their a*b + c
    # (more FMAs than erf's and tanh's own, which --fmad=false keeps).
    fmas = len(re.findall(r"\bfma\.rn\.f(?:32|64)\b", ptx))
    if name == "optim":
        assert "--fmad=false" in options and fmas == 0, f"optim.cu: {fmas} FMAs in its PTX"
    if name == "activation":
        strict = (*options, "--fmad=false")
        rc, log, strict_ptx = nvrtc_compile(lib, cuda_kernels.kernel_source(name), f"{name}.cu", strict)
        assert rc == 0, log
        assert fmas > len(re.findall(r"\bfma\.rn\.f(?:32|64)\b", strict_ptx)), "activation.cu: nothing contracted"


# --------------------------------------------------------------------------
# the loader, without a GPU
# --------------------------------------------------------------------------


def test_import_does_not_need_cupy():
    code = (
        "import sys\n"
        "sys.modules['cupy'] = None  # any 'import cupy' now raises ImportError\n"
        "import minicnn.kernels.cuda as k\n"
        "assert len(k.TABLE) == 35, sorted(k.TABLE)  # the reference's 27, 4 conv schedule and 4 fused entries\n"
        "for n in k.SOURCES: k.kernel_source(n)\n"
        "import numpy as np\n"
        "x = np.ones((1, 1, 4, 4), np.float32)\n"
        "assert k.im2col(x, 2, 2, 1, 1, 0, 0).shape == (1, 4, 9)  # NumPy input: reference\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_kernel_source_shape():
    for name in cuda_kernels.SOURCES:
        src = cuda_kernels.kernel_source(name)
        assert src.count("#define MINICNN_COMMON_CUH") == 1
        # the common header comes first, so the .cu's own include is skipped
        assert src.index("#define MINICNN_COMMON_CUH") < src.rindex('#include "common.cuh"')
        assert "MINICNN_HOST_BUILD" in src  # guarded host include, off under NVRTC
    with pytest.raises(ValueError):
        cuda_kernels.kernel_source("nope")


class _FakeRawModule:
    created: list = []

    def __init__(self, code, options=(), **kw):
        self.code, self.options = code, options
        _FakeRawModule.created.append(self)

    def get_function(self, name):
        return ("fn", name, id(self))


def _fake_cupy(device):
    cp = types.ModuleType("cupy")
    cp.RawModule = _FakeRawModule
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: device[0]))
    return cp


def test_modules_compiled_once_per_device(monkeypatch):
    device = [0]
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device))
    monkeypatch.setattr(cuda_kernels.launch, "_modules", {})
    monkeypatch.setattr(cuda_kernels.launch, "_functions", {})
    _FakeRawModule.created = []
    f1 = cuda_kernels.get_function("conv", "im2col_f32_i32")
    f2 = cuda_kernels.get_function("conv", "col2im_f32_i32")
    f3 = cuda_kernels.get_function("conv", "im2col_f32_i32")
    assert f1 == f3 and f1[2] == f2[2]
    assert len(_FakeRawModule.created) == 1
    mod = _FakeRawModule.created[0]
    assert mod.code == cuda_kernels.kernel_source("conv")
    assert tuple(mod.options) == cuda_kernels.NVRTC_OPTIONS["conv"] == ()
    cuda_kernels.get_function("optim", "sgd_update_f32")
    assert tuple(_FakeRawModule.created[-1].options) == ("--fmad=false",)
    _FakeRawModule.created.pop()
    cuda_kernels.get_function("pool", "maxpool2d_forward_f32_i32")
    assert len(_FakeRawModule.created) == 2
    device[0] = 1  # another GPU: compiled again for it
    cuda_kernels.get_function("conv", "im2col_f32_i32")
    assert len(_FakeRawModule.created) == 3


def test_launch_grid(monkeypatch):
    calls = []
    monkeypatch.setattr(cuda_kernels.launch, "get_function", lambda m, k: lambda g, b, a: calls.append((g, b)))
    cuda_kernels.launch._launch("conv", "x", 0, ())
    assert calls == []  # an empty launch is skipped (grid 0 is invalid)
    cuda_kernels.launch._launch("conv", "x", 1, ())
    cuda_kernels.launch._launch("conv", "x", cuda_kernels.BLOCK * 10 + 1, ())
    cuda_kernels.launch._launch("conv", "x", 2**40, ())
    B = cuda_kernels.BLOCK
    assert calls == [((1,), (B,)), ((11,), (B,)), ((cuda_kernels.MAX_GRID,), (B,))]


def test_scalar_helpers():
    assert type(cuda_kernels.launch._i64(3)) is np.int64
    assert type(cuda_kernels.launch._i32(True)) is np.int32
    assert type(cuda_kernels.launch._scalar(0.1, np.float32)) is np.float32
    assert cuda_kernels.launch._scalar(0.1, np.float32) == np.float32(0.1)
    assert cuda_kernels.launch._ix(2**31 - 1, 5) == "i32" and cuda_kernels.launch._ix(5, 2**31) == "i64"
    assert cuda_kernels.launch._geometry(2, 2, 1, 1, 0, 0) == (2, 2, 1, 1, 0, 0)
    assert cuda_kernels.launch._geometry(2, 2, 0, 1, 0, 0) is None
    assert cuda_kernels.launch._geometry(2.5, 2, 1, 1, 0, 0) is None
