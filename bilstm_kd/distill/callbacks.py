"""What teacher fine-tuning and student training share in choosing their best epoch."""

from __future__ import annotations

import math


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
