"""Fine-tuning batches for the teacher: shuffled every epoch, grouped by length, always full."""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from bilstm_kd.teacher.inference import EncodedTexts
from bilstm_kd.teacher.precision import bucket_width


def training_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, window: int = 50
) -> list[np.ndarray]:
    """One epoch of shuffled batches of similar-length examples.

    Examples are shuffled, then sorted by length within windows of `window` batches, cut into batches, and the
    batches are shuffled: each batch is short to pad, yet every epoch sees a different mix. Every batch is
    full: when the examples do not fill the last one, it is topped up with examples drawn again, so a
    batch always splits evenly between the replicas of a `tf.distribute` strategy.
    """
    order = rng.permutation(len(lengths))
    shortfall = -len(order) % batch_size
    if shortfall:
        order = np.concatenate([order, rng.choice(len(lengths), shortfall, replace=shortfall > len(lengths))])
    batches = []
    span = batch_size * window
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[offset : offset + batch_size] for offset in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def training_dataset(
    encoded: EncodedTexts,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    buckets: tuple[int, ...] | None = None,
    first_epoch: int = 0,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Endless length-grouped batches from epoch `first_epoch` on, its first `skip_batches` left out (a resumed
    fine-tuning); epoch e is shuffled from (seed, e). Use with `steps_per_epoch`.

    With `buckets` (`precision.length_buckets`, for XLA), each batch is padded to the smallest bucket that
    holds its longest example, rather than to that example.
    """

    def generate():
        for epoch in itertools.count(first_epoch):
            rng = np.random.default_rng([seed, epoch])
            batches = training_batches(encoded.lengths, batch_size, rng)
            for indices in batches[skip_batches if epoch == first_epoch else 0 :]:
                width = int(bucket_width(encoded.lengths[indices].max(), buckets)) if buckets else 0
                batch = encoded.batch(indices, width)
                # int32, the backbone's input type: under a tf.distribute strategy Keras averages a first
                # batch across replicas to build the model, which a bool tensor cannot be.
                batch["padding_mask"] = batch["padding_mask"].astype(np.int32)
                yield batch, labels[indices]

    signature = (
        {
            "token_ids": tf.TensorSpec([None, None], tf.int32),
            "segment_ids": tf.TensorSpec([None, None], tf.int32),
            "padding_mask": tf.TensorSpec([None, None], tf.int32),
        },
        tf.TensorSpec([None], tf.int32),
    )
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)
