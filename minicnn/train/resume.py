"""What a resumed run must share with the checkpoint it continues.

A resume continues bitwise where the run stopped, so it must train the same
thing: the same model class and loader (batch size, sample count, shuffle,
seed, drop_last), and the same ``resume_settings`` (the caller's training
settings, e.g. the command line's ``--lr``). :func:`resume_differences` names
each difference; the Trainer refuses the resume with :class:`ResumeError`
before it touches anything.
"""

from __future__ import annotations

import json

_MISSING = object()


class ResumeError(ValueError):
    """The checkpoint cannot be resumed by this run: not a training checkpoint, or other settings."""


def fingerprint(model, loader, settings: dict) -> dict:
    """What must agree between a checkpoint and the run resuming it (stored in the checkpoint)."""
    return {"model": type(model).__name__, "batch_size": loader.batch_size, "num_samples": loader.num_samples,
            "shuffle": loader.shuffle, "loader_seed": loader.seed, "drop_last": loader.drop_last,
            "settings": json.loads(json.dumps(settings, allow_nan=False))}  # as the checkpoint gives them back


def resume_differences(theirs: dict, mine: dict) -> list[str]:
    """One line per difference between the checkpoint's fingerprint ``theirs`` and this run's ``mine``.

    A setting of ``mine["settings"]`` that the checkpoint lacks (written before
    it was recorded) counts as a difference: it cannot be shown to agree.
    """
    theirs, mine = dict(theirs), dict(mine)
    their_settings, my_settings = theirs.pop("settings", None) or {}, mine.pop("settings", None) or {}
    diff = [f"{k}: the run has {theirs.get(k)!r}, this one {v!r}" for k, v in mine.items() if theirs.get(k) != v]
    for k, v in my_settings.items():
        had = their_settings.get(k, _MISSING)
        if had is _MISSING:
            diff.append(f"{k}: not recorded in the checkpoint, this one {v!r}")
        elif had != v:
            diff.append(f"{k}: the run has {had!r}, this one {v!r}")
    return diff
