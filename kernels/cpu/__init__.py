"""Numba CPU kernels for the ``numba`` backend (entries override the reference)."""

TABLE: dict = {}
