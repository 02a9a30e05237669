"""Exceptions raised by the data pipeline.

Every problem with a data file -- missing, truncated, corrupt, wrong format,
wrong checksum, unsafe pickle, inconsistent counts, wrong image size -- is a
``DatasetError`` (a ``ValueError``) whose message names the file and the
problem, so the caller never sees a bare error from deep inside NumPy.
"""

from __future__ import annotations

import pickle


class DatasetError(ValueError):
    """A data file or folder is missing, malformed or inconsistent."""


class DatasetNotFoundError(DatasetError):
    """The data is not on disk (and could not be downloaded).

    The message lists every file and folder that was looked for and says how
    to get the data.
    """


class ChecksumError(DatasetError):
    """A file's MD5 digest differs from the expected one."""


class UnsafePickleError(DatasetError, pickle.UnpicklingError):
    """A pickle asked for a global outside the short allow-list (never executed)."""
