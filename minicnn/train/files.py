"""The small file helpers of a run: strict JSON, CSV text, model files, the tutorial's log line.

Every file is written atomically (``minicnn.atomic``): a reader, or a run
killed while writing, sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from minicnn.atomic import write_text_atomic
from minicnn.serialization import load, save


def write_json(path, obj) -> Path:
    """Strict JSON (a NaN or infinity raises ``ValueError``), indented, written atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def csv_text(rows: list[dict]) -> str:
    """``rows`` as CSV text; the columns are every key in order of first appearance (missing cells empty)."""
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def strip_timing(history: dict) -> dict:
    """The history without its wall-clock fields (what two identical runs share)."""
    return {**history, "epochs": [{k: v for k, v in e.items() if k != "timing"} for e in history["epochs"]]}


def save_model(path, model, meta: dict | None = None) -> Path:
    """Weights plus JSON metadata, ``{"model": state_dict, "meta": json}``."""
    return save({"model": model.state_dict(), "meta": json.dumps(meta or {}, allow_nan=False)}, path)


def load_model(path, model):
    """Load weights saved by :func:`save_model` or a trainer checkpoint into ``model``; returns the meta dict."""
    ck = load(path)
    sd = ck["model"] if isinstance(ck.get("model"), dict) else ck
    model.load_state_dict(sd)
    meta = ck.get("meta")
    return json.loads(meta) if isinstance(meta, str) else {}


def history_files(history: dict, status: str, best, eval_name: str) -> dict[str, str]:
    """The texts of ``history.json``, ``log.csv``, ``epochs.csv`` and ``train_log.txt`` (name -> text).

    ``history``: the Trainer's ``{"log": [...], "epochs": [...]}``; ``epochs.csv``
    has one flat row per epoch (evaluation numbers prefixed ``<eval_name>_``, no lists).
    """
    log = history["log"]
    rows = []
    for e in history["epochs"]:
        row = {k: v for k, v in e.items() if k not in ("eval", "timing")}
        for k, v in (e.get("eval") or {}).items():
            if not isinstance(v, list):
                row[f"{eval_name}_{k}"] = v
        row.update(e.get("timing", {}))
        rows.append(row)
    return {"history.json": json.dumps({**history, "status": status, "best": best}, indent=2, allow_nan=False) + "\n",
            "log.csv": csv_text(log) if log else "epoch,batch,step,loss\n",
            "epochs.csv": csv_text(rows) if rows else "epoch\n",
            "train_log.txt": "".join(tutorial_line(r["epoch"], r["batch"], r["loss"]) + "\n" for r in log)}


def tutorial_line(epoch: int, batch: int, loss: float) -> str:
    """The PyTorch tutorial's log line: ``[%d, %5d] loss: %.3f``."""
    return "[%d, %5d] loss: %.3f" % (epoch, batch, loss)
