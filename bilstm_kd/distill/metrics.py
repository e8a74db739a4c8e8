"""Metrics of the `Distiller`: the task's metrics from a confusion matrix, and the replica sums that keep every
metric exact under a `tf.distribute` strategy."""

from __future__ import annotations

import keras
import tensorflow as tf

from bilstm_kd.data.tasks import METRICS, scores

TASK_METRICS = METRICS


@keras.saving.register_keras_serializable(package="bilstm_kd")
class TaskMetric(keras.metrics.Metric):
    """One of the task metrics (`bilstm_kd.data.tasks.METRICS`: accuracy, macro_f1, f1 of a positive class) from
    logits and gold class ids, through a confusion matrix and the same `scores` as evaluation.

    Args:
        name: the metric, one of `METRICS`.
        num_classes: the number of classes.
        positive_class: the class id `f1` scores.

    Example:
    >>> metric = TaskMetric("f1", num_classes=2, positive_class=1)
    >>> metric.update_state([1, 0, 1], [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, name: str = "accuracy", num_classes: int = 2, positive_class: int = 0, **kwargs):
        if name not in METRICS:
            raise ValueError(f"`name` must be one of {METRICS}, received name={name!r}")
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.positive_class = positive_class
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes), initializer="zeros", name="confusion", dtype="float32"
        )

    @staticmethod
    def counts(labels, logits, num_classes: int, sample_weight=None):
        """The `[num_classes, num_classes]` confusion counts (rows gold, columns predicted) of one batch."""
        labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
        predictions = keras.ops.cast(keras.ops.argmax(logits, axis=-1), "int32")
        weight = keras.ops.ones_like(labels, "float32") if sample_weight is None else sample_weight
        weight = keras.ops.cast(keras.ops.reshape(weight, (-1,)), "float32")
        return tf.math.confusion_matrix(labels, predictions, num_classes, weights=weight, dtype=tf.float32)

    def update_state(self, labels, logits, sample_weight=None):
        self.add_counts(self.counts(labels, logits, self.num_classes, sample_weight))

    def add_counts(self, counts):
        """Adds `counts()` output (possibly summed over several batches or replicas)."""
        self.confusion.assign_add(counts)

    def result(self):
        return scores(keras.ops.convert_to_tensor(self.confusion), (self.name,), self.positive_class)[self.name]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "positive_class": self.positive_class}


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
