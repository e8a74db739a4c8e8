"""Teacher speed on accelerators: mixed precision, and sequence lengths rounded up to a few buckets for XLA.

Mixed precision computes in 16 bits and keeps the weights in float32: `mixed_float16` on a GPU (with loss
scaling while fine-tuning, as float16 gradients underflow), `mixed_bfloat16` on a TPU and on CPUs that
multiply bfloat16 in hardware (its float32 range needs no loss scaling). The logits layer stays float32.

XLA compiles one program per input shape. Batches here are padded only to their longest example, which gives
as many shapes as lengths; under `jit_compile` they are padded to the next of `length_buckets` instead (and
inference batches get a fixed number of rows per bucket), so XLA compiles a handful of programs per model.
"""

from __future__ import annotations

import numpy as np

from bilstm_kd.distribute.devices import cpu_has_bfloat16, has_gpu, has_tpu

FLOAT32 = "float32"
# Each bucket at most 1.5x the one before it: padding adds at most half a batch's length (about a fifth on
# SST-2's sentences), and lengths up to 128 word pieces compile 7 programs.
_BUCKETS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def precision_policy(mixed_precision: str) -> str:
    """The Keras dtype policy a `--mixed_precision` value means on this machine.

    `"off"`: float32. `"auto"`: `mixed_float16` with a GPU, `mixed_bfloat16` with a TPU or a CPU with bfloat16
    instructions (`devices.cpu_has_bfloat16`), float32 otherwise. A policy name is taken as it is.
    """
    if mixed_precision == "off":
        return FLOAT32
    if mixed_precision != "auto":
        return mixed_precision
    if has_gpu():
        return "mixed_float16"
    return "mixed_bfloat16" if has_tpu() or cpu_has_bfloat16() else FLOAT32


def length_buckets(max_length: int) -> tuple[int, ...]:
    """The padded lengths XLA sees for inputs of at most `max_length` word pieces (`max_length` the last)."""
    return (*(bucket for bucket in _BUCKETS if bucket < max_length), max_length)


def bucket_width(longest, buckets: tuple[int, ...]):
    """The smallest bucket that holds `longest` word pieces (the last bucket when none does); an array of
    lengths gives an array of widths."""
    return np.asarray(buckets)[np.minimum(np.searchsorted(buckets, longest), len(buckets) - 1)]


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, max_tokens: int, buckets: tuple[int, ...]
) -> list[tuple[np.ndarray, int, int]]:
    """Inference batches with few distinct shapes: `(indices, width, rows)`, examples in length order.

    Every batch of a bucket is `rows` examples by the bucket's `width` word pieces (`rows`: `batch_size`,
    or fewer so that `rows * width <= max_tokens` when it is positive); the caller pads a bucket's last,
    shorter batch to `rows`. At most one shape per bucket.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, received batch_size={batch_size}")
    order = np.argsort(lengths, kind="stable")
    widths = bucket_width(np.asarray(lengths)[order], buckets)
    batches = []
    for width in np.unique(widths):
        members = order[widths == width]
        rows = batch_size if max_tokens <= 0 else max(1, min(batch_size, max_tokens // int(width)))
        batches.extend((members[start : start + rows], int(width), rows) for start in range(0, len(members), rows))
    return batches
