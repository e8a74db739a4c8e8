"""The students' input pipeline: texts tokenized once, batches bucketed by length.

Texts are tokenized once, in large batches (`text.vocab.WordTokenizer`), and kept in memory as
variable-length id vectors. Training batches are then formed by `tf.data.Dataset.bucket_by_sequence_length`:
sentences of similar length share a batch, and each batch is padded only to its own longest sentence.
The students' `MaskedBiLSTM` stops each sentence at its own length, so this padding changes nothing but
the cost. A model batch is `(ids, targets)` for single sentences and `((ids_a, ids_b), targets)` for
pairs, with `targets` a dict of `teacher_logits` (transfer set), `label` and `has_label`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bilstm_kd.text.vocab import WordTokenizer

TOKENIZE_BATCH_SIZE = 1024


def _ragged_ids(tokenizer: WordTokenizer, texts: tf.Tensor) -> tf.RaggedTensor:
    # Real words have ids >= 1 ([UNK] is 1), so stripping trailing zeros recovers each sentence exactly.
    return tf.RaggedTensor.from_tensor(tokenizer(texts), padding=0)


def _as_dense(value):
    # Unbatching ragged ids yields rank-0 ragged specs, which `padded_batch` refuses; inside `map` they
    # arrive as plain tensors, and `tf.identity` turns the spec into a `TensorSpec`.
    return tf.identity(value) if isinstance(value, tf.Tensor) else value.flat_values


def _densify(inputs, targets):
    return tf.nest.map_structure(_as_dense, inputs), targets


def tokenize_records(records: tf.data.Dataset, tokenizer: WordTokenizer, is_pair: bool) -> tf.data.Dataset:
    """Transfer-set dicts (`records.parse_records` output) -> unbatched `(ids, targets)` examples.

    Args:
        records: dicts with `text_a`, [`text_b`,] `label`, `has_label` and optionally `teacher_logits`.
        tokenizer: the student's tokenizer (its `max_length` truncates).
        is_pair: whether the records have `text_b`.

    Returns:
        A dataset of `(ids, targets)` (pairs: `((ids_a, ids_b), targets)`), ids a 1-D int32 vector per
        sentence, targets a dict with `label`, `has_label` and, when present, `teacher_logits`.
    """

    def tokenize_batch(batch: dict[str, tf.Tensor]):
        targets = {"label": tf.cast(batch["label"], tf.int32), "has_label": tf.cast(batch["has_label"], tf.int32)}
        if "teacher_logits" in batch:
            targets["teacher_logits"] = batch["teacher_logits"]
        if is_pair:
            if "text_b" not in batch:
                raise ValueError(f"A sentence-pair task needs 'text_b' in its records; received keys {sorted(batch)}")
            inputs = (_ragged_ids(tokenizer, batch["text_a"]), _ragged_ids(tokenizer, batch["text_b"]))
        else:
            inputs = _ragged_ids(tokenizer, batch["text_a"])
        return inputs, targets

    return (
        records.batch(TOKENIZE_BATCH_SIZE)
        .map(tokenize_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(_densify)
    )


def tokenize_examples(examples: tf.data.Dataset, tokenizer: WordTokenizer, is_pair: bool) -> tf.data.Dataset:
    """Gold-labelled `(text, label)` / `((text_a, text_b), label)` elements (`data.Examples.to_dataset()`)
    -> unbatched `(ids, {"label", "has_label"})` examples, as `tokenize_records` gives."""

    def tokenize_batch(texts, labels):
        labels = tf.cast(labels, tf.int32)
        targets = {"label": labels, "has_label": tf.cast(labels >= 0, tf.int32)}
        if is_pair:
            return (_ragged_ids(tokenizer, texts[0]), _ragged_ids(tokenizer, texts[1])), targets
        return _ragged_ids(tokenizer, texts), targets

    return (
        examples.batch(TOKENIZE_BATCH_SIZE)
        .map(tokenize_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(_densify)
    )


def _sequence_length(inputs, targets) -> tf.Tensor:
    if isinstance(inputs, tuple):
        return tf.maximum(tf.shape(inputs[0])[0], tf.shape(inputs[1])[0])
    return tf.shape(inputs)[0]


def bucketed_batch_count(examples: tf.data.Dataset, boundaries: list[int], batch_size: int) -> int:
    """How many batches `bucket_by_sequence_length` makes of `examples`: each bucket yields its full batches and
    then one partial batch, whatever the order, so the count is the sum over buckets of ceil(size / batch).
    One pass over the lengths (over a cached dataset, it fills the cache the first epoch then reads)."""
    lengths = [chunk.numpy() for chunk in examples.map(_sequence_length).batch(65_536)]
    if not lengths:
        return 0
    buckets = np.digitize(
        np.concatenate(lengths), boundaries
    )  # bucket i holds boundaries[i-1] <= length < boundaries[i]
    sizes = np.bincount(buckets, minlength=len(boundaries) + 1)
    return int(np.sum(-(-sizes // batch_size)))


def batch_for_student(
    examples: tf.data.Dataset,
    batch_size: int,
    max_length: int,
    shuffle: bool = False,
    seed: int = 0,
    bucket_width: int = 5,
    shuffle_buffer: int = 100_000,
    cache: bool = True,
) -> tf.data.Dataset:
    """Unbatched `(ids, targets)` examples -> padded model batches, bucketed by length.

    Args:
        examples: output of `tokenize_records` or `tokenize_examples`.
        batch_size: examples per batch (paper: 50 single sentence, 256 pairs).
        max_length: the tokenizer's maximum length (sets the bucket boundaries).
        shuffle: shuffle examples (reshuffled every epoch) and the order of the batches.
        seed: shuffle seed.
        bucket_width: sentence lengths per bucket; 0 disables bucketing (plain batches in input order).
        shuffle_buffer: examples in the shuffle buffer.
        cache: keep the tokenized examples in memory after the first pass, so later epochs skip
            tokenization.

    Returns:
        A dataset of `(ids, targets)` batches, `ids` `[batch, longest]` int32 (pairs: a tuple).
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, received batch_size={batch_size}")
    if bucket_width < 0:
        raise ValueError(f"`bucket_width` must be 0 (no bucketing) or more, received bucket_width={bucket_width}")
    if cache:
        examples = examples.cache()
    unshuffled = examples  # the batch count does not depend on the order: count without drawing a shuffle
    if shuffle:
        examples = examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if bucket_width == 0 or max_length <= bucket_width:
        batches = examples.padded_batch(batch_size)
    else:
        boundaries = list(range(bucket_width + 1, max_length + 1, bucket_width))
        batches = examples.bucket_by_sequence_length(
            _sequence_length, bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1)
        )
        # Bucketing hides the number of batches from tf.data (and Keras' progress bar shows "48/Unknown").
        batches = batches.apply(
            tf.data.experimental.assert_cardinality(bucketed_batch_count(unshuffled, boundaries, batch_size))
        )
        if shuffle:
            # Buckets fill at different rates; mixing finished batches keeps lengths from arriving in runs.
            batches = batches.shuffle(64, seed=seed + 1, reshuffle_each_iteration=True)
    return batches.prefetch(tf.data.AUTOTUNE)


def transfer_batches(
    records: tf.data.Dataset,
    tokenizer: WordTokenizer,
    is_pair: bool,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """Transfer-set dicts (`records.parse_records`) -> shuffled, length-bucketed training batches."""
    examples = tokenize_records(records, tokenizer, is_pair)
    return batch_for_student(examples, batch_size, tokenizer.max_length, shuffle=shuffle, seed=seed, cache=cache)


def example_batches(
    examples: tf.data.Dataset,
    tokenizer: WordTokenizer,
    is_pair: bool,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    bucket: bool = True,
    cache: bool = True,
) -> tf.data.Dataset:
    """Gold-labelled text examples (`data.Examples.to_dataset()`) -> model batches.

    Use it for dev sets (`shuffle=False`), for the gold-label baseline (`shuffle=True`) and, with
    `bucket=False`, for predictions that must stay in input order.
    """
    tokenized = tokenize_examples(examples, tokenizer, is_pair)
    return batch_for_student(
        tokenized,
        batch_size,
        tokenizer.max_length,
        shuffle=shuffle,
        seed=seed,
        bucket_width=5 if bucket else 0,
        cache=cache,
    )
