"""CUDA kernels for the ``cupy`` backend (entries override the reference)."""

TABLE: dict = {}
