"""Encoding text for the teacher and computing its logits.

Text is always encoded outside the Keras graph (`encode_texts`) so that batches can be grouped by length and
padded only to their own longest sequence: most GLUE sentences are far shorter than the teacher's maximum
length, and a transformer's cost grows with the padded length, not the real one.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import Task
from bilstm_kd.distill.evaluation import traced_forward
from bilstm_kd.teacher.lite import LITE_TOKENS_PER_BATCH, LiteTeacher, doubtful_examples
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.teacher.precision import bucketed_batches, length_buckets

# Padded word pieces per inference batch. On this 2-core machine, MiniLM labelling SST-2 sentences ran at
# ~125 GFLOP/s with batches of at most 1,024-2,048 word pieces, ~100 with 256 sentences (~3,500 word pieces)
# and ~45 with 1,024 sentences: larger batches' activations no longer fit in the CPU caches.
INFERENCE_TOKENS_PER_BATCH = 2048
# Sentences tokenized per call to the keras-hub preprocessor when encoding.
_ENCODE_CHUNK = 2048
# What `EncodedTexts.batch` gives, for any batch size and length: one traced graph serves every batch, so the
# same sentence gets the same logits to the bit in whatever batch (and on whichever worker) it is labelled.
TEACHER_INPUTS = {
    "token_ids": tf.TensorSpec([None, None], tf.int32),
    "segment_ids": tf.TensorSpec([None, None], tf.int32),
    "padding_mask": tf.TensorSpec([None, None], tf.bool),
}


class TextExamples(Protocol):
    """What the teacher needs of `bilstm_kd.data.Examples`: text columns and gold class ids."""

    texts: tuple[np.ndarray, ...]
    labels: np.ndarray

    def __len__(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class EncodedTexts:
    """Packed word-piece ids of many examples, unpadded: example i is `token_ids[offsets[i]:offsets[i] + lengths[i]]`.

    `segment_ids` is laid out the same way (0 for the first sentence, 1 for the second).
    """

    token_ids: np.ndarray
    segment_ids: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, indices: np.ndarray, width: int = 0) -> dict[str, np.ndarray]:
        """BERT inputs of the examples `indices`, padded to the longest of them, or to `width` if longer."""
        lengths = self.lengths[indices]
        width = max(int(lengths.max()) if len(lengths) else 1, width)
        positions = np.arange(width)
        padding_mask = positions[None, :] < lengths[:, None]
        # Positions past an example's end read a valid neighbour and are then overwritten with padding.
        gather = np.minimum(self.offsets[indices][:, None] + positions[None, :], max(len(self.token_ids) - 1, 0))
        return {
            "token_ids": np.where(padding_mask, self.token_ids[gather], self.pad_id).astype(np.int32),
            "segment_ids": np.where(padding_mask, self.segment_ids[gather], 0).astype(np.int32),
            "padding_mask": padding_mask,
        }

    def select(self, indices: np.ndarray) -> EncodedTexts:
        """The examples `indices`, in that order, packed anew."""
        lengths = self.lengths[indices]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else lengths
        gather = np.arange(int(lengths.sum())) + np.repeat(self.offsets[indices] - offsets, lengths)
        return EncodedTexts(self.token_ids[gather], self.segment_ids[gather], offsets, lengths, self.pad_id)


def _normalise_masks(texts: tf.Tensor, mask_token: str) -> tf.Tensor:
    # Augmentation writes "[MASK]" (users may write any case): it becomes the tokenizer's own mask token, which
    # it recognises exactly as written ("[MASK]" for BERT, "<mask>" for MPNet).
    return tf.strings.regex_replace(texts, r"(?i)\[mask\]", mask_token)


def _as_text_array(texts: Sequence[str] | np.ndarray) -> np.ndarray:
    array = np.asarray(texts, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"Texts must be a 1-D sequence of strings, received an array of shape {array.shape}")
    return array


_PACKING_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _packing_function(preprocessor: keras_hub.models.BertTextClassifierPreprocessor, pair: bool):
    """The preprocessor as a traced function returning unpadded ids: flat token ids, flat segment ids, lengths.

    Traced, keras-hub runs its TensorFlow Text implementation; called eagerly it would take its much slower
    pure-Python path.
    """
    functions = _PACKING_FUNCTIONS.setdefault(preprocessor, {})
    if pair not in functions:
        preprocessor_reference = weakref.ref(preprocessor)  # the cache must not keep the preprocessor alive

        def pack(*columns):
            preprocessor = preprocessor_reference()
            mask_token = preprocessor.tokenizer.mask_token
            segments = tuple(_normalise_masks(column, mask_token) for column in columns)
            # Keyword `x`: a positional tuple would be read as (x, y) by keras-hub's preprocessing wrapper.
            packed = preprocessor(x=segments if pair else segments[0])
            padding_mask = tf.cast(packed["padding_mask"], tf.bool)
            return (
                tf.cast(tf.boolean_mask(packed["token_ids"], padding_mask), tf.int32),
                tf.cast(tf.boolean_mask(packed["segment_ids"], padding_mask), tf.int32),
                tf.reduce_sum(tf.cast(padding_mask, tf.int64), axis=1),
            )

        signature = [tf.TensorSpec([None], tf.string)] * (2 if pair else 1)
        functions[pair] = tf.function(pack, input_signature=signature)
    return functions[pair]


def encode_texts(preprocessor: keras_hub.models.BertTextClassifierPreprocessor, *texts: Sequence[str]) -> EncodedTexts:
    """Tokenizes and packs single sentences or sentence pairs ([CLS] a [SEP] (b [SEP])), without padding.

    Args:
        preprocessor: the teacher's preprocessor (`teacher.preprocessor`).
        *texts: one sequence of strings, or two of the same length for sentence pairs.
    """
    if len(texts) not in (1, 2):
        raise ValueError(f"Pass one text column or two (sentence pairs), received {len(texts)}")
    columns = [_as_text_array(column) for column in texts]
    if len({len(column) for column in columns}) > 1:
        raise ValueError(f"Sentence pair columns differ in length: {[len(column) for column in columns]}")
    count = len(columns[0])
    pack = _packing_function(preprocessor, pair=len(columns) == 2)
    token_chunks, segment_chunks, length_chunks = [], [], []
    for start in range(0, count, _ENCODE_CHUNK):
        chunk = [tf.constant(column[start : start + _ENCODE_CHUNK].astype(str)) for column in columns]
        token_ids, segment_ids, lengths = pack(*chunk)
        token_chunks.append(token_ids.numpy())
        segment_chunks.append(segment_ids.numpy())
        length_chunks.append(lengths.numpy())
    lengths = np.concatenate(length_chunks) if length_chunks else np.zeros([0], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if count else np.zeros([0], np.int64)
    return EncodedTexts(
        token_ids=np.concatenate(token_chunks) if token_chunks else np.zeros([0], np.int32),
        segment_ids=np.concatenate(segment_chunks) if segment_chunks else np.zeros([0], np.int32),
        offsets=offsets,
        lengths=lengths,
        pad_id=int(preprocessor.tokenizer.pad_token_id),
    )


def length_sorted_batches(lengths: np.ndarray, batch_size: int, max_tokens: int = 0) -> list[np.ndarray]:
    """Example indices in batches of similar length, for inference (the caller restores the input order).

    Args:
        lengths: word pieces per example.
        batch_size: the most examples per batch.
        max_tokens: if positive, the most padded word pieces per batch (examples times the batch's longest);
            a single example longer than this still forms a batch of its own.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, received batch_size={batch_size}")
    order = np.argsort(lengths, kind="stable")
    if max_tokens <= 0:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    sorted_lengths = np.asarray(lengths)[order]
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        # Lengths ascend, so the newest example is the batch's longest.
        while end < len(order) and end - start < batch_size and (end + 1 - start) * sorted_lengths[end] <= max_tokens:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def encoded_logits(
    teacher: BertTeacher | LiteTeacher,
    encoded: EncodedTexts,
    batch_size: int = 256,
    progress: keras.utils.Progbar | None = None,
    max_tokens: int = INFERENCE_TOKENS_PER_BATCH,
    strategy: tf.distribute.Strategy | None = None,
    jit_compile: bool = False,
) -> np.ndarray:
    """Logits of already encoded examples, in their original order, computed in length-sorted batches.

    Batches hold at most `batch_size` examples and `max_tokens` padded word pieces (see
    `INFERENCE_TOKENS_PER_BATCH`; 0 lifts that limit). With a `strategy` of several replicas on this
    machine (`distribute.local_strategy`; the teacher created in its scope), each batch (global, as every
    batch size here) is split between the replicas, which run at the same time. With `jit_compile`, XLA
    runs the teacher, on batches of a few shapes only (`precision.bucketed_batches`: one per length bucket).
    A `LiteTeacher` runs in its interpreter (neither `strategy` nor `jit_compile` apply).
    """
    logits = np.zeros([len(encoded), teacher.num_classes], np.float32)
    if isinstance(teacher, LiteTeacher):
        forward, replicas, jit_compile = teacher.logits, 1, False
    else:
        forward = traced_forward(teacher, TEACHER_INPUTS, jit_compile)
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if jit_compile:
        buckets = length_buckets(teacher.sequence_length)
        batches = bucketed_batches(encoded.lengths, batch_size, max_tokens, buckets)
    else:
        sorted_batches = length_sorted_batches(encoded.lengths, batch_size, max_tokens)
        batches = [(indices, 0, len(indices)) for indices in sorted_batches]
    for indices, width, rows in batches:
        if rows > len(indices):  # a bucket's last batch, filled with its first example to the bucket's shape
            batch = encoded.batch(np.concatenate([indices, np.full(rows - len(indices), indices[0])]), width)
        else:
            batch = encoded.batch(indices, width)
        if replicas > 1:
            logits[indices] = _replica_logits(strategy, forward, batch)[: len(indices)]
        else:
            logits[indices] = np.asarray(forward(batch))[: len(indices)]
        if progress is not None:
            progress.add(len(indices))
    return logits


def checked_logits(
    lite: LiteTeacher,
    teacher: BertTeacher,
    encoded: EncodedTexts,
    check_margin: float,
    batch_size: int = 256,
    progress: keras.utils.Progbar | None = None,
    **teacher_options,
) -> tuple[np.ndarray, np.ndarray]:
    """The `lite` teacher's logits, with `teacher`'s for the examples whose two highest are less than `check_margin`
    apart; also returns those examples' indices. `teacher_options`: `encoded_logits`' for `teacher`."""
    logits = encoded_logits(lite, encoded, batch_size, progress, max_tokens=LITE_TOKENS_PER_BATCH)
    doubtful = doubtful_examples(logits, check_margin)
    if len(doubtful):
        logits[doubtful] = encoded_logits(teacher, encoded.select(doubtful), batch_size, **teacher_options)
    return logits, doubtful


def _replica_logits(strategy: tf.distribute.Strategy, forward, batch: dict[str, np.ndarray]) -> np.ndarray:
    """One batch split into contiguous parts, one per replica, and the logits put back together in order."""
    bounds = np.linspace(0, len(batch["token_ids"]), strategy.num_replicas_in_sync + 1).astype(int)

    def replica_part(context: tf.distribute.experimental.ValueContext):
        start, stop = bounds[context.replica_id_in_sync_group], bounds[context.replica_id_in_sync_group + 1]
        return {name: values[start:stop] for name, values in batch.items()}

    parts = _replicated_function(strategy, forward)(strategy.experimental_distribute_values_from_function(replica_part))
    return np.concatenate([part.numpy() for part in strategy.experimental_local_results(parts)])


_REPLICATED_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _replicated_function(strategy: tf.distribute.Strategy, forward):
    """`forward` on every replica at once, traced (an eager `strategy.run` would run replicas one by one)."""
    function = _REPLICATED_FUNCTIONS.get(forward)
    if function is None:
        function = tf.function(
            lambda parts: strategy.run(forward.python_function, args=(parts,)), reduce_retracing=True
        )
        _REPLICATED_FUNCTIONS[forward] = function
    return function


def teacher_logits(
    teacher: BertTeacher, *texts: Sequence[str], batch_size: int = 256, verbose: int = 0, jit_compile: bool = False
) -> np.ndarray:
    """The teacher's logits for arbitrary text, shape `[examples, num_classes]`, in input order.

    Args:
        teacher: a `BertTeacher`.
        *texts: one sequence of strings, or two (sentence pairs).
        batch_size: examples per forward pass; batches hold examples of similar length.
        verbose: 1 shows a progress bar.
        jit_compile: run the teacher with XLA (see `encoded_logits`).

    Example:
    >>> teacher_logits(teacher, ["a good film", "a [MASK] film"], batch_size=64)
    """
    encoded = encode_texts(teacher.preprocessor, *texts)
    progress = keras.utils.Progbar(len(encoded), unit_name="example") if verbose else None
    return encoded_logits(teacher, encoded, batch_size, progress, jit_compile=jit_compile)


def evaluate_teacher(
    teacher: BertTeacher,
    examples: TextExamples,
    task: Task,
    batch_size: int = 256,
    in_detail: bool = False,
    verbose: int = 0,
    jit_compile: bool = False,
) -> dict[str, Any]:
    """The task's metrics of the teacher on `examples` (the same `task.evaluate` the students are scored with;
    `in_detail`: `task.evaluate_in_detail`; `verbose`: a progress bar; `jit_compile`: XLA)."""
    logits = teacher_logits(teacher, *examples.texts, batch_size=batch_size, verbose=verbose, jit_compile=jit_compile)
    evaluate = task.evaluate_in_detail if in_detail else task.evaluate
    return evaluate(np.asarray(examples.labels), np.argmax(logits, axis=-1))
