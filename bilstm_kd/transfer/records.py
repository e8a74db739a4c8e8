"""The transfer set's record format, shared by augmentation, teacher labelling and student training.

One `tf.train.Example` per transfer example:
    text_a          bytes      the (first) sentence
    text_b          bytes      the second sentence (sentence-pair tasks only)
    label           int64      gold class id, or -1 for augmented examples
    has_label       int64      1 for original training examples, 0 for augmented ones
    teacher_logits  float[C]   the teacher's logits (once labelled)
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

NO_LABEL = -1


def encode_example(texts: Sequence[str | bytes], label: int, teacher_logits: Sequence[float] | None = None) -> bytes:
    """Serializes one transfer example; `label` is `NO_LABEL` for augmented examples."""

    def as_bytes(text: str | bytes) -> bytes:
        return text if isinstance(text, bytes) else text.encode("utf-8")

    feature = {
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[as_bytes(text)]))
        for name, text in zip(("text_a", "text_b"), texts)
    }
    feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
    feature["has_label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label != NO_LABEL)]))
    if teacher_logits is not None:
        feature["teacher_logits"] = tf.train.Feature(float_list=tf.train.FloatList(value=list(teacher_logits)))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def feature_spec(is_pair: bool, num_classes: int | None = None) -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec; `num_classes` adds the teacher logits."""
    spec = {
        "text_a": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "has_label": tf.io.FixedLenFeature([], tf.int64),
    }
    if is_pair:
        spec["text_b"] = tf.io.FixedLenFeature([], tf.string)
    if num_classes is not None:
        spec["teacher_logits"] = tf.io.FixedLenFeature([num_classes], tf.float32)
    return spec


def parse_records(records: tf.data.Dataset, is_pair: bool, num_classes: int | None = None) -> tf.data.Dataset:
    """Serialized records -> dicts of tensors (`text_a`, [`text_b`,] `label`, `has_label`[, `teacher_logits`])."""
    spec = feature_spec(is_pair, num_classes)
    return records.map(lambda record: tf.io.parse_single_example(record, spec), num_parallel_calls=tf.data.AUTOTUNE)
