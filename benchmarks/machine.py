"""The machine a benchmark ran on, and its threads: what the numbers depend on.

``env_info()`` describes the machine (CPU, load, versions, thread counts, the
BLAS library and the CPU kernels it picked, the variables that steer them) for
each result file's ``meta``; ``set_threads`` gives numba, OpenBLAS and PyTorch
one thread count; ``openblas_pin`` says when OPENBLAS_CORETYPE keeps OpenBLAS
from the kernels it would pick itself (an AVX-512 CPU run on AVX2 kernels:
Net2's products 1.6x slower, benchmarks/notes/cpu-speed-blas.md, "OpenBLAS's kernels").
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_cuda_available() -> bool:
    if not torch_available():
        return False
    import torch

    return bool(torch.cuda.is_available())


def numba_threads() -> int:
    """Threads numba's parallel kernels use (``numba.get_num_threads()``); CPU count without numba."""
    try:
        import numba

        return int(numba.get_num_threads())
    except ImportError:  # pragma: no cover - numba is a base dependency
        return os.cpu_count() or 1


def blas_threads(set_to: int | None = None) -> list[dict]:
    """Each BLAS library loaded here (NumPy's OpenBLAS, say): its thread count and the
    CPU kernels it picked (``corename``; see OPENBLAS_CORETYPE); sets the count first
    when ``set_to`` is given. Read and set through threadpoolctl, as ``minicnn.kernels.cpu.threads`` does."""
    from threadpoolctl import threadpool_info, threadpool_limits

    if set_to is not None:
        threadpool_limits(limits=int(set_to), user_api="blas")
    return [{"lib": Path(i["filepath"]).name, "api": i["internal_api"], "threads": i["num_threads"],
             "corename": i.get("architecture")} for i in threadpool_info() if i["user_api"] == "blas"]


def set_threads(n: int | None, torch_too: bool = True) -> int:
    """Use ``n`` threads in numba, OpenBLAS (NumPy) and PyTorch; ``None``: leave numba and
    OpenBLAS alone and give PyTorch numba's count. Returns the count PyTorch gets."""
    if n is not None:
        import numba

        numba.set_num_threads(int(n))
        blas_threads(int(n))
    threads = int(n) if n is not None else numba_threads()
    if torch_too and torch_available():
        import torch

        torch.set_num_threads(threads)
    return threads


def openblas_pin() -> dict | None:
    """When ``OPENBLAS_CORETYPE`` makes OpenBLAS run other CPU kernels than it would pick
    for this CPU itself: ``{"variable", "running", "autodetected"}`` (the second asked of a
    fresh Python with the variable unset); ``None`` when it is unset, changes nothing, or
    OpenBLAS is not what NumPy uses. Some machines set it for everyone (one of this project's VMs:
    ``Haswell``, AVX2, on AVX-512 CPUs); PyTorch's convolutions (oneDNN) do not read it."""
    pinned = os.environ.get("OPENBLAS_CORETYPE", "").strip()
    running = [i["corename"] for i in blas_threads() if i["api"] == "openblas"]
    if not pinned or not running:
        return None
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    code = ("import numpy, threadpoolctl; print([i.get('architecture') for i in "
            "threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'][0])")
    try:
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = p.stdout.split()
    auto = lines[-1] if p.returncode == 0 and lines else None
    if auto is None or auto == running[0]:
        return None
    return {"variable": pinned, "running": running[0], "autodetected": auto}


def warn_openblas_pin(pin: dict | None, file=None) -> None:
    """One line on stderr when ``openblas_pin()`` found a pin (the numbers of minicnn's CPU
    backends then depend on it)."""
    if pin:
        print(f"warning: OPENBLAS_CORETYPE={pin['variable']} runs OpenBLAS's {pin['running']} kernels where "
              f"it would pick {pin['autodetected']} on this CPU: minicnn's CPU matrix products (numpy and "
              "numba backends) run on those; PyTorch's convolutions do not read the variable. Unset it "
              "for the speed this CPU gives (benchmarks/notes/cpu-speed-blas.md, \"OpenBLAS's kernels\").",
              file=file or sys.stderr)


def env_info() -> dict:
    """What the numbers depend on: versions, threads, CPU, load, BLAS-related variables."""
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numpy": np.__version__,
        "numba_threads": numba_threads(),
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("OPENBLAS", "OMP_", "MKL_", "NUMBA_", "MINICNN_", "GOTO", "BLIS"))},
    }
    try:
        info["loadavg_start"] = list(os.getloadavg())
    except OSError:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:  # pragma: no cover
        pass
    info["openblas_runtime"] = blas_threads()
    info["openblas_pin"] = openblas_pin()
    warn_openblas_pin(info["openblas_pin"])
    try:
        info["blas"] = {k: v.get("version") for k, v in np.show_config(mode="dicts")["Build Dependencies"].items()}
    except Exception:  # pragma: no cover - older numpy
        pass
    if torch_available():
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cuda"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["torch_tf32"] = {"cudnn_conv": torch.backends.cudnn.allow_tf32,
                                  "cuda_matmul": torch.backends.cuda.matmul.allow_tf32}
    import minicnn

    info["minicnn_backends"] = minicnn.available_backends()
    return info


def rss_now_mb() -> float | None:
    """Current resident set size in MiB (Linux /proc), None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None
