"""minicnn's kernels, installed as ``minicnn.kernels``.

* ``reference`` -- plain NumPy/CuPy array code: the readable definition.
* ``cpu``       -- Numba-jitted CPU kernels (the ``numba`` backend).
* ``cuda``      -- CUDA C sources (``*.cu``) and their CuPy loader (``cupy``).

Each exposes ``TABLE``, a dict from kernel name to function; a backend's
kernel table is the reference table updated with its own entries.
"""
