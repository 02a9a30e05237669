"""``python -m experiments.report``: see :mod:`experiments.report`."""

from .cli import main

if __name__ == "__main__":
    main()
