"""How long a training should take, said once its first batches have run."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras


def duration(seconds: float) -> str:
    """`seconds` as a person reads it: "40 s", "3.5 min", "1.2 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class TimeEstimate(keras.callbacks.Callback):
    """Logs, once, the time an epoch takes and the longest the training can take, from the rate of the first
    epoch's batches `skip` to `skip + measure` (the batches before include tracing and compiling).

    Args:
        name: the stage, to start the line (`[name]`).
        epochs: the most epochs the training runs (early stopping may end it sooner).
        steps_per_epoch: batches in an epoch; None takes Keras' count, when the dataset has one.
        log: where the line goes.
        clock: seconds as a float (tests pass their own).
    """

    def __init__(
        self,
        name: str,
        epochs: int,
        steps_per_epoch: int | None = None,
        log: Callable[[str], None] = print,
        skip: int = 5,
        measure: int = 20,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        self.name, self.epochs, self.steps_per_epoch = name, epochs, steps_per_epoch
        self.log, self.skip, self.measure, self.clock = log, skip, measure, clock
        self._epoch, self._started, self._said = 0, None, False

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self._said:
            return
        if batch == self.skip:
            self._started = self.clock()
        elif batch == self.skip + self.measure and self._started is not None:
            self._said = True
            steps = self.steps_per_epoch or self.params.get("steps")
            if not steps:
                return
            epoch_seconds = steps * (self.clock() - self._started) / self.measure
            left = self.epochs - self._epoch
            self.log(
                f"[{self.name}] about {duration(epoch_seconds)} an epoch ({steps:,} batches): at most "
                f"{duration(epoch_seconds * left)} for {left} epoch{'s' if left > 1 else ''}"
            )
