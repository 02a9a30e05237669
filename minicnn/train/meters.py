"""The running sums of the unfinished epoch: what its record and the tutorial log lines average."""

from __future__ import annotations

from minicnn import backend


class EpochMeters:
    """Sums over the steps of one epoch so far (and over the current log window).

    * ``loss_sum``: sum of the per-batch mean losses (host floats: the loop
      reads each loss anyway, for the NaN check and the log);
    * ``window_sum``, ``window_n``: the same over the current log window;
    * ``samples``: images seen;
    * ``correct``: correct predictions, a 0-d int64 array on the device, and
      ``parts``: each named loss term's sum, a 0-d float64 array on the
      device (summed there so that a step does not wait for the device);
    * ``time_s``: training wall time (evaluation not included).

    ``state()`` / ``from_state()`` turn them into plain numbers and back, for
    the checkpoint: a resumed epoch goes on from the same sums.
    """

    def __init__(self, part_names=()):
        xp = backend.current().xp
        self.loss_sum = 0.0
        self.window_sum, self.window_n = 0.0, 0
        self.samples = 0
        self.correct = xp.zeros((), dtype=xp.int64)
        self.parts = {k: xp.zeros((), dtype=xp.float64) for k in part_names}
        self.time_s = 0.0

    def add(self, loss: float, logits, y, parts: dict) -> None:
        """One step: its mean loss, class scores ``logits`` (N, classes), labels ``y`` (N,), loss terms."""
        self.loss_sum += loss
        self.window_sum += loss
        self.window_n += 1
        self.samples += int(y.shape[0])
        self.correct += (logits.argmax(axis=1) == y).sum()
        for k, v in parts.items():
            self.parts[k] += v

    def take_window(self) -> float:
        """The mean loss of the current log window; starts the next window."""
        mean = self.window_sum / self.window_n
        self.window_sum, self.window_n = 0.0, 0
        return mean

    def record(self, steps: int) -> dict:
        """The epoch's training numbers after ``steps`` steps (None where nothing was counted)."""
        rec = {"train_loss": self.loss_sum / steps if steps else None,
               "train_accuracy": int(self.correct) / self.samples if self.samples else None}
        for k, v in self.parts.items():
            rec[f"train_{k}"] = float(v) / steps if steps else None
        return rec

    def timing(self) -> dict:
        return {"train_time_s": self.time_s,
                "images_per_s": self.samples / self.time_s if self.time_s > 0 else None}

    def state(self) -> dict:
        return {"loss_sum": self.loss_sum, "window_sum": self.window_sum, "window_n": self.window_n,
                "samples": self.samples, "correct": int(self.correct),
                "parts": {k: float(v) for k, v in self.parts.items()}, "time_s": self.time_s}

    @classmethod
    def from_state(cls, st: dict, part_names=()) -> "EpochMeters":
        xp = backend.current().xp
        m = cls(part_names)
        m.loss_sum = float(st["loss_sum"])
        m.window_sum, m.window_n = float(st["window_sum"]), int(st["window_n"])
        m.samples = int(st["samples"])
        m.correct = xp.asarray(int(st["correct"]), dtype=xp.int64)
        m.parts = {k: xp.asarray(float(st["parts"].get(k, 0.0)), dtype=xp.float64) for k in part_names}
        m.time_s = float(st["time_s"])
        return m
