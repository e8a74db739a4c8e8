"""BERT's learning-rate schedule for fine-tuning the teacher."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="bilstm_kd")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak_learning_rate`, then linear decay to 0 at `total_steps` (BERT's schedule).

    Args:
        peak_learning_rate: the learning rate at the end of warm-up.
        warmup_steps: steps of linear warm-up (0: start at the peak).
        total_steps: the step at which the learning rate reaches 0.

    Example:
    >>> schedule = WarmupLinearDecay(3e-5, warmup_steps=10, total_steps=100)
    >>> [round(float(schedule(step)), 8) for step in (5, 10, 55, 100)]
    [1.5e-05, 3e-05, 1.5e-05, 0.0]
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        if peak_learning_rate <= 0:
            raise ValueError(f"`peak_learning_rate` must be positive, received peak_learning_rate={peak_learning_rate}")
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be at least 1, received total_steps={total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"`warmup_steps` must be in [0, total_steps={total_steps}], received {warmup_steps}")
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = self.peak_learning_rate * step / max(self.warmup_steps, 1)
        decay = self.peak_learning_rate * (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return keras.ops.maximum(keras.ops.where(step < self.warmup_steps, warmup, decay), 0.0)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }
