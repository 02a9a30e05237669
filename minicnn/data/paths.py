"""Where datasets live: ``--data-dir``, ``$MINICNN_DATA`` or a per-user cache folder.

Resolution order (first that is set wins):

1. an explicit ``data_dir`` argument (what a ``--data-dir`` option passes);
2. the environment variable ``MINICNN_DATA``;
3. ``$XDG_CACHE_HOME/minicnn-data``, else ``~/.cache/minicnn-data``.

Nothing is created here; folders are made only when something is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MINICNN_DATA"
CACHE_NAME = "minicnn-data"

#: Debian's package ``dataset-fashion-mnist`` installs the four IDX files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def default_data_dir() -> Path:
    """``$XDG_CACHE_HOME/minicnn-data`` or ``~/.cache/minicnn-data``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / CACHE_NAME


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$MINICNN_DATA``, else the cache folder.

    ``~`` and environment variables in the value are expanded. The folder
    need not exist.
    """
    if data_dir is not None and str(data_dir).strip():
        raw = str(data_dir)
    else:
        raw = os.environ.get(ENV_VAR, "").strip()
        if not raw:
            return default_data_dir()
    return Path(os.path.expandvars(raw)).expanduser()


def describe_data_dir_choice(data_dir: str | os.PathLike | None = None) -> str:
    """One line saying which root was chosen and why (for error messages)."""
    root = resolve_data_dir(data_dir)
    if data_dir is not None and str(data_dir).strip():
        why = "given as data_dir/--data-dir"
    elif os.environ.get(ENV_VAR, "").strip():
        why = f"from ${ENV_VAR}"
    else:
        why = f"the default; set ${ENV_VAR} or pass --data-dir to change it"
    return f"data root {root} ({why})"


def add_data_dir_argument(parser, *, flag: str = "--data-dir"):
    """Add the standard ``--data-dir`` option to an ``argparse`` parser.

    The parsed value is ``None`` when omitted; pass it to the dataset's
    ``root=`` (or to :func:`resolve_data_dir`) so ``$MINICNN_DATA`` and the
    cache default apply.
    """
    parser.add_argument(
        flag,
        dest="data_dir",
        default=None,
        metavar="DIR",
        help=(
            f"folder holding the datasets (default: ${ENV_VAR} if set, else "
            f"{default_data_dir()})"
        ),
    )
    return parser
