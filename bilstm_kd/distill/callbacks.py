"""What teacher fine-tuning and student training share in choosing their best epoch."""

from __future__ import annotations

import math
from typing import Any

import keras


def improves(value: float, best: float | None, mode: str = "max") -> bool:
    """Whether an epoch scoring `value` beats the best so far (`best`; None before the first epoch).

    A NaN score never beats a real one, and anything beats a NaN best, so a first epoch that scores NaN is
    still kept (there is then something to fall back on) and replaced by the first real score.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"`mode` must be 'max' or 'min', received mode={mode!r}")
    if best is None or math.isnan(best):
        return True
    if math.isnan(value):
        return False
    return value > best if mode == "max" else value < best


class SelectBestOnDev(keras.callbacks.Callback):
    """Keeps the epoch that scores best on dev: teacher fine-tuning and student training both choose theirs so.

    After each epoch, `score(epoch, logs)` gives the epoch's dev score (None: not a score to keep); when it
    beats every earlier one (`improves`), `keep(epoch)` is called. Subclasses say how an epoch is scored and
    kept.

    Args:
        mode: "max" (accuracy, F1) or "min" (a loss).
        best_value: the best score so far, for a resumed run (None: no epoch yet).
        best_epoch: the 1-based epoch of `best_value`.
    """

    def __init__(self, mode: str = "max", best_value: float | None = None, best_epoch: int | None = None):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"`mode` must be 'max' or 'min', received mode={mode!r}")
        self.mode = mode
        self.best_value = best_value
        self.best_epoch = best_epoch

    def score(self, epoch: int, logs: dict[str, Any]) -> float | None:
        raise NotImplementedError

    def keep(self, epoch: int) -> None:
        raise NotImplementedError

    def select(self, epoch: int, logs: dict[str, Any]) -> bool:
        """Scores the epoch and keeps it when it is the best so far; returns whether it was."""
        value = self.score(epoch, logs)
        if value is None or not improves(value, self.best_value, self.mode):
            return False
        self.best_value, self.best_epoch = value, epoch + 1
        self.keep(epoch)
        return True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.select(epoch, logs or {})
