"""Per-example loss terms of distillation (Tang et al., 2019, equation 3; Hinton et al., 2015).

Keras (>= 3.12) has `keras.distillation.LogitsDistillation` and `DistillationLoss` objects, but their
`compute_loss` returns one batch mean per replica. The `Distiller` needs each example's terms: augmented
examples have no gold label (their cross-entropy is masked out), and the batch loss is the sum over the
global batch divided by its size, which stays exact under a `tf.distribute` strategy even when the last
batch splits unevenly between replicas (averaging replica means does not). So the terms are written here.
"""

from __future__ import annotations

import tensorflow as tf


def per_example_losses(
    logits: tf.Tensor,
    labels: tf.Tensor,
    has_label: tf.Tensor,
    teacher_logits: tf.Tensor | None,
    distill_loss: str,
    mse_reduction: str,
    temperature: float,
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Per-example hard-label cross-entropy (0 where there is no label) and teacher-matching loss."""
    logits = tf.cast(logits, tf.float32)
    safe_labels = tf.where(has_label > 0, labels, tf.zeros_like(labels))
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    cross_entropy = tf.where(has_label > 0, cross_entropy, tf.zeros_like(cross_entropy))
    if teacher_logits is None:
        return cross_entropy, None
    teacher_logits = tf.cast(teacher_logits, tf.float32)
    if distill_loss == "mse":
        squared_error = tf.square(teacher_logits - logits)
        matching = tf.reduce_sum(squared_error, -1) if mse_reduction == "sum" else tf.reduce_mean(squared_error, -1)
    else:
        teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature)
        student_log_probs = tf.nn.log_softmax(logits / temperature)
        kl = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), -1)
        # T^2 keeps gradient magnitudes comparable across temperatures (Hinton et al., 2015).
        matching = temperature**2 * kl
    return cross_entropy, matching
