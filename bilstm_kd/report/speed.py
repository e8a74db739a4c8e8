"""Inference throughput, measured the paper's way: batches in data order, each padded to its longest.

Used by the run report (teacher and students side by side in one process) and by `benchmarks/speed.py`.
Only the model's forward pass is timed; inputs are prepared beforehand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.distill.evaluation import traced_forward
from bilstm_kd.teacher.inference import encode_texts
from bilstm_kd.text.vocab import WordTokenizer

# Shapes of Devlin et al. 2019: (layers, hidden, heads, feed-forward).
BERT_SHAPES = {"bert_base": (12, 768, 12, 3072), "bert_large": (24, 1024, 16, 4096)}


def bert_with_shape(shape: tuple[int, int, int, int], tokenizer: Any, sequence_length: int) -> Any:
    """A `BertTeacher` of random weights with the given (layers, hidden, heads, feed-forward) shape and the
    tokenizer's vocabulary, for timing: speed does not depend on the weights."""
    import keras_hub

    from bilstm_kd.teacher.model import BertTeacher

    layers, hidden, heads, intermediate = shape
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=layers,
        num_heads=heads,
        hidden_dim=hidden,
        intermediate_dim=intermediate,
        max_sequence_length=512,
    )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    return BertTeacher(backbone, preprocessor, num_classes=2)


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
    encoded = encode_texts(preprocessor, *texts)
    return [
        encoded.batch(np.arange(start, min(start + batch_size, len(encoded))))
        for start in range(0, len(encoded), batch_size)
    ]


def parameter_counts(model: keras.Model, embedding: int) -> dict[str, int]:
    """All of a model's parameters, its word embeddings' (`embedding`) and the rest, as the paper counts them."""
    total = int(model.count_params())
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


def student_embedding_parameters(student: keras.Model) -> int:
    """The parameters of a student's word vectors (both channels)."""
    return sum(int(np.prod(weight.shape)) for weight in student.weights if "embedding" in weight.path)


def throughputs(model: keras.Model, batches: Mapping[str, Sequence[Any]], min_seconds: float = 2.0) -> dict[str, dict]:
    """`throughput` of the model's traced forward pass on each named list of batches."""
    forward = traced_forward(model)
    return {name: throughput(forward, batch_list, min_seconds) for name, batch_list in batches.items()}


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
