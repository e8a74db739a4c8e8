"""Inference throughput, measured the paper's way: batches in data order, each padded to its longest.

Used by the run report (teacher and students side by side in one process) and by `benchmarks/speed.py`.
Only the model's forward pass is timed; inputs are prepared beforehand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from bilstm_kd.vocab import WordTokenizer


def student_batches(
    tokenizer: WordTokenizer, texts: Sequence[np.ndarray], batch_size: int
) -> list[np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Student word ids in data order, `batch_size` examples per batch, each padded to its longest."""
    batches = []
    for start in range(0, len(texts[0]), batch_size):
        columns = [tokenizer(tf.constant(list(column[start : start + batch_size]))).numpy() for column in texts]
        batches.append(columns[0] if len(columns) == 1 else tuple(columns))
    return batches


def teacher_batches(preprocessor: Any, texts: Sequence[np.ndarray], batch_size: int) -> list[dict[str, np.ndarray]]:
    """BERT inputs in data order, `batch_size` examples per batch, each padded to its longest."""
    from bilstm_kd.teacher import encode_texts

    encoded = encode_texts(preprocessor, *texts)
    return [
        encoded.batch(np.arange(start, min(start + batch_size, len(encoded))))
        for start in range(0, len(encoded), batch_size)
    ]


def compiled_forward(model: Any) -> Callable:
    """`model(inputs, training=False)` as one traced function for any batch size and length."""
    return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)


def throughput(forward: Callable, batches: Sequence[Any], min_seconds: float = 2.0, max_passes: int = 20) -> dict:
    """Examples per second of `forward` over `batches`.

    The first two batches run untimed: they trace `forward` (from the second shape on, one graph for every
    shape) and warm it up. Then whole passes over the batches are timed until `min_seconds` have passed
    (at least one pass).
    """
    examples = sum(len(tf.nest.flatten(batch)[0]) for batch in batches)
    for batch in batches[:2]:
        np.asarray(forward(batch))
    passes, started = 0, time.perf_counter()
    while True:
        for batch in batches:
            np.asarray(forward(batch))
        passes += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds or passes >= max_passes:
            break
    return {"examples_per_second": passes * examples / elapsed, "examples": examples, "passes": passes}
