"""Metrics of the `Distiller`: F1 of the positive class, and the replica sums that keep every metric exact
under a `tf.distribute` strategy."""

from __future__ import annotations

import keras
import tensorflow as tf

TASK_METRICS = ("accuracy", "f1")


@keras.saving.register_keras_serializable(package="bilstm_kd")
class PositiveClassF1(keras.metrics.Metric):
    """F1 of class 1 (GLUE's F1 for MRPC and QQP) from logits and gold class ids.

    Args:
        name: metric name.

    Example:
    >>> metric = PositiveClassF1()
    >>> metric.update_state([1, 0, 1], [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, name: str = "f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), initializer="zeros", name="true_positives")
        self.predicted_positives = self.add_variable(shape=(), initializer="zeros", name="predicted_positives")
        self.actual_positives = self.add_variable(shape=(), initializer="zeros", name="actual_positives")

    @staticmethod
    def counts(labels, logits, sample_weight=None):
        """`[true positives, predicted positives, actual positives]` of one batch."""
        labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
        predictions = keras.ops.cast(keras.ops.argmax(logits, axis=-1), "int32")
        weight = keras.ops.ones_like(labels, "float32") if sample_weight is None else sample_weight
        weight = keras.ops.cast(keras.ops.reshape(weight, (-1,)), "float32")
        predicted = keras.ops.cast(keras.ops.equal(predictions, 1), "float32") * weight
        actual = keras.ops.cast(keras.ops.equal(labels, 1), "float32") * weight
        return keras.ops.stack([keras.ops.sum(predicted * actual), keras.ops.sum(predicted), keras.ops.sum(actual)])

    def update_state(self, labels, logits, sample_weight=None):
        self.add_counts(self.counts(labels, logits, sample_weight))

    def add_counts(self, counts):
        """Adds `counts()` output (possibly summed over several batches or replicas)."""
        self.true_positives.assign_add(counts[0])
        self.predicted_positives.assign_add(counts[1])
        self.actual_positives.assign_add(counts[2])

    def result(self):
        denominator = self.predicted_positives + self.actual_positives
        return keras.ops.where(denominator > 0, 2.0 * self.true_positives / keras.ops.maximum(denominator, 1.0), 0.0)


def sum_over_replicas(values: tf.Tensor) -> tf.Tensor:
    """`values` summed over the replicas of a `tf.distribute` strategy (themselves with one replica).

    Metrics are updated with these global sums, so every replica holds the figures of the whole global
    batch, exact even when a batch splits unevenly (averaging the replicas' own figures is not). Sums
    rather than gathered examples: `all_gather` of batches with dynamic shapes fails under multi-worker
    strategies, `all_reduce` does not.
    """
    context = tf.distribute.get_replica_context()
    values = tf.stop_gradient(values)
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def add_to_mean(metric: keras.metrics.Mean, total: tf.Tensor, count: tf.Tensor) -> None:
    metric.update_state(total / tf.maximum(count, 1.0), sample_weight=count)
