"""`Distiller`: trains a student on cached teacher logits, gold labels, or a mix of both.

The loss of one example is (Tang et al., 2019, equation 3)

    alpha * has_label * CE(label, softmax(z_S)) + (1 - alpha) * D(z_T, z_S)

where `D` is the squared error between teacher and student logits summed over classes (the paper; or
averaged, as Keras' MSE does), or the temperature-scaled KL divergence `T^2 * KL(softmax(z_T / T) ||
softmax(z_S / T))` (Hinton et al., 2015). An augmented example has no gold label and contributes only the
second term. The batch loss is the sum over the global batch divided by its size, so it is the same under
a `tf.distribute` strategy as on one device (each replica divides its own sum by the global batch size).

The teacher does not run here: its logits come with the data, because the teacher (BERT, WordPiece ids)
and the student (word ids) read different inputs. With `alpha=1` the teacher's logits are not needed,
which is how the no-distillation baseline is trained: same model, same code, gold labels only.

Why not Keras' own `keras.distillation.Distiller` (Keras >= 3.12) and its `DistillationLoss` objects: it runs
the teacher online on the student's own inputs (here they differ, and the logits are cached), and its losses
return one mean per replica, where this loss needs each example's terms (`losses.per_example_losses`) to
mask unlabelled examples and to stay exact over replicas. The terms and metrics live in `losses` and
`metrics`; this class only wires them into `train_step` and `test_step`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bilstm_kd.distill import DISTILL_LOSSES, MSE_REDUCTIONS
from bilstm_kd.distill.losses import per_example_losses
from bilstm_kd.distill.metrics import TASK_METRICS, TaskMetric, add_to_mean, sum_over_replicas
from bilstm_kd.distribute import strategies as distribute


def _zero_unless(condition: tf.Tensor, gradient):
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):  # embedding gradients: keep them sparse
        values = tf.where(condition, gradient.values, tf.zeros_like(gradient.values))
        return tf.IndexedSlices(values, gradient.indices, gradient.dense_shape)
    return tf.where(condition, gradient, tf.zeros_like(gradient))


@keras.saving.register_keras_serializable(package="bilstm_kd")
class Distiller(distribute.MultiWorkerFixes, keras.Model):
    """A student trained to match a teacher's cached logits and, optionally, gold labels.

    `call()` is the student, so `predict` gives student logits; export `distiller.student`, never the
    distiller. Data for `fit` / `evaluate` is `(inputs, targets)` where `targets` is a dict:

    - `teacher_logits`: float `[batch, num_classes]`; needed for training unless `alpha == 1`.
    - `label`: int gold class ids, -1 where there is none (augmented examples).
    - `has_label`: 1 where `label` is a gold label; defaults to `label >= 0`.

    `targets` may also be a plain tensor of gold labels (dev sets, the baseline).

    Tracked: `loss` (what is optimised), `distillation_loss` (mean teacher-matching loss),
    `hard_label_loss` (mean cross-entropy over labelled examples), the task metrics against gold labels
    (`accuracy`, `macro_f1`, `f1`) and `teacher_agreement` (how often student and teacher argmax agree).

    Args:
        student: the student model (word ids in, logits out).
        alpha: weight of the hard-label cross-entropy; `1 - alpha` weighs the teacher-matching loss.
            The paper's best setting is 0; 1 trains on gold labels only.
        distill_loss: `"mse"` (squared error on logits, the paper) or `"kl"` (temperature-scaled KL).
        mse_reduction: `"sum"` (over classes, the paper) or `"mean"` (Keras' MSE: 1/num_classes of it).
        temperature: softmax temperature of the `"kl"` loss.
        num_classes: number of logits; defaults to the student's `num_classes`.
        task_metrics: metrics against gold labels: any of `"accuracy"`, `"macro_f1"`, `"f1"` (F1 of
            `positive_class`); the first is the one `train_student` selects the best epoch by.
        positive_class: the class id `"f1"` scores (GLUE's F1 is of class 1).

    Example:
    >>> student = BiLSTMClassifier(vocabulary_size=20, embedding_dim=4, num_classes=2, lstm_units=3,
    ...                            hidden_units=5)
    >>> distiller = Distiller(student, alpha=0.0)
    >>> distiller.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95))
    >>> ids = np.array([[5, 6, 0], [7, 0, 0]], "int32")
    >>> targets = {"teacher_logits": np.array([[1.0, -1.0], [-2.0, 2.0]], "float32"),
    ...            "label": np.array([0, -1]), "has_label": np.array([1, 0])}
    >>> history = distiller.fit(ids, targets, epochs=1, verbose=0)
    """

    def __init__(
        self,
        student: keras.Model,
        alpha: float = 0.0,
        distill_loss: str = "mse",
        mse_reduction: str = "sum",
        temperature: float = 1.0,
        num_classes: int | None = None,
        task_metrics: tuple[str, ...] | list[str] = ("accuracy",),
        positive_class: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(student, keras.Model):
            raise ValueError(f"`student` must be a keras.Model, received {type(student).__name__}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be between 0 and 1, received alpha={alpha!r}")
        if distill_loss not in DISTILL_LOSSES:
            raise ValueError(f"`distill_loss` must be one of {DISTILL_LOSSES}, received distill_loss={distill_loss!r}")
        if mse_reduction not in MSE_REDUCTIONS:
            raise ValueError(
                f"`mse_reduction` must be one of {MSE_REDUCTIONS}, received mse_reduction={mse_reduction!r}"
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be greater than 0, received temperature={temperature!r}")
        if num_classes is None:
            num_classes = getattr(student, "num_classes", None)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"`num_classes` must be an integer of at least 2 (or a student with a `num_classes` attribute), "
                f"received num_classes={num_classes!r}"
            )
        task_metrics = tuple(task_metrics)
        unknown = [name for name in task_metrics if name not in TASK_METRICS]
        if unknown:
            raise ValueError(f"`task_metrics` must be a subset of {TASK_METRICS}, received task_metrics={task_metrics}")

        self.student = student
        self.alpha = float(alpha)
        self.distill_loss = distill_loss
        self.mse_reduction = mse_reduction
        self.temperature = float(temperature)
        self.num_classes = num_classes
        self.task_metrics = task_metrics
        self.positive_class = int(positive_class)

        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.hard_label_loss_tracker = keras.metrics.Mean(name="hard_label_loss")
        self.teacher_agreement = keras.metrics.Mean(name="teacher_agreement")
        self.gold_metrics = [TaskMetric(name, num_classes, self.positive_class) for name in task_metrics]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    @property
    def metrics(self):
        return [
            self.total_loss_tracker,
            self.distillation_loss_tracker,
            self.hard_label_loss_tracker,
            *self.gold_metrics,
            self.teacher_agreement,
        ]

    def unpack_targets(self, targets) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
        """`(labels, has_label, teacher_logits or None)` from a targets dict or a tensor of gold labels."""
        if isinstance(targets, dict):
            unknown = set(targets) - {"label", "has_label", "teacher_logits"}
            if unknown:
                raise ValueError(
                    f"Distiller targets may hold 'label', 'has_label' and 'teacher_logits', "
                    f"received keys {sorted(targets)}"
                )
            teacher_logits = targets.get("teacher_logits")
            labels = targets.get("label")
            has_label = targets.get("has_label")
        else:
            teacher_logits, labels, has_label = None, targets, None
        if labels is None:
            if teacher_logits is None:
                raise ValueError("Distiller targets need 'teacher_logits', 'label' or both; received neither")
            labels = -tf.ones(tf.shape(teacher_logits)[:1], tf.int32)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        if has_label is None:
            has_label = labels >= 0
        has_label = tf.cast(tf.reshape(has_label, [-1]), tf.int32)
        return labels, has_label, teacher_logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The batch loss (scaled for the replica count), updating the loss trackers on the way."""
        labels, has_label, teacher_logits = self.unpack_targets(y)
        if teacher_logits is None and self.alpha < 1.0 and training:
            raise ValueError(
                f"Training with alpha={self.alpha} needs 'teacher_logits' in the targets; only alpha=1 "
                "(the gold-label baseline) trains without a teacher"
            )
        cross_entropy, matching = per_example_losses(
            y_pred, labels, has_label, teacher_logits, self.distill_loss, self.mse_reduction, self.temperature
        )
        per_example = self.alpha * cross_entropy
        if matching is not None:
            per_example += (1.0 - self.alpha) * matching
        label_weight = tf.cast(has_label, tf.float32)
        loss_sum, batch_size, cross_entropy_sum, labelled, matching_sum = tf.unstack(
            sum_over_replicas(
                tf.stack(
                    [
                        tf.reduce_sum(per_example),
                        tf.cast(tf.shape(per_example)[0], tf.float32),
                        tf.reduce_sum(cross_entropy * label_weight),
                        tf.reduce_sum(label_weight),
                        tf.reduce_sum(matching) if matching is not None else tf.constant(0.0),
                    ]
                )
            )
        )
        add_to_mean(self.total_loss_tracker, loss_sum, batch_size)
        add_to_mean(self.hard_label_loss_tracker, cross_entropy_sum, labelled)
        if matching is not None:
            add_to_mean(self.distillation_loss_tracker, matching_sum, batch_size)
        # The optimizer sums gradients over replicas, so each replica divides its own sum by the *global*
        # batch size: the step is then that of one device on the whole batch, even when the last batch of an
        # epoch splits unevenly (dividing each replica's mean by the replica count would not be).
        loss = tf.reduce_sum(per_example) / tf.maximum(batch_size, 1.0)
        if self.losses:
            loss += tf.add_n(self.losses) / tf.distribute.get_strategy().num_replicas_in_sync
        return loss

    def _update_metrics(self, y, logits) -> dict[str, tf.Tensor]:
        labels, has_label, teacher_logits = self.unpack_targets(y)
        weight = tf.cast(has_label, tf.float32)
        safe_labels = tf.where(has_label > 0, labels, tf.zeros_like(labels))
        predictions = tf.argmax(logits, -1, output_type=tf.int32)
        confusion = TaskMetric.counts(safe_labels, logits, self.num_classes, weight)
        statistics = [tf.reshape(confusion, [-1])]
        if teacher_logits is not None:
            agree = tf.equal(predictions, tf.argmax(teacher_logits, -1, output_type=tf.int32))
            statistics.append(
                tf.stack([tf.reduce_sum(tf.cast(agree, tf.float32)), tf.cast(tf.size(agree), tf.float32)])
            )
        totals = sum_over_replicas(tf.concat(statistics, axis=0))
        cells = self.num_classes**2
        for metric in self.gold_metrics:
            metric.add_counts(tf.reshape(totals[:cells], confusion.shape))
        reported = list(self.metrics)
        if teacher_logits is not None:
            add_to_mean(self.teacher_agreement, totals[cells], totals[cells + 1])
        else:  # nothing to compare with: leave the teacher figures out of the logs rather than log zeros
            left_out = [self.distillation_loss_tracker, self.teacher_agreement]
            if self.alpha < 1.0:  # without its teacher term the total would be a misleading alpha * CE
                left_out.append(self.total_loss_tracker)
            reported = [m for m in reported if m not in left_out]
        return distribute.replica_logs({metric.name: metric.result() for metric in reported})

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=logits, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        # A NaN/inf loss (bad teacher logits, divergence) must not reach the weights: its step is taken with
        # zero gradients, the logged loss still shows it, and `train_student` stops with a clear error.
        finite = tf.math.is_finite(loss)
        gradients = [_zero_unless(finite, gradient) for gradient in gradients]
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(y, logits)

    def test_step(self, data):
        x, y = data[0], data[1]
        logits = self(x, training=False)
        self.compute_loss(x=x, y=y, y_pred=logits, training=False)
        return self._update_metrics(y, logits)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "student": keras.saving.serialize_keras_object(self.student),
                "alpha": self.alpha,
                "distill_loss": self.distill_loss,
                "mse_reduction": self.mse_reduction,
                "temperature": self.temperature,
                "num_classes": self.num_classes,
                "task_metrics": list(self.task_metrics),
                "positive_class": self.positive_class,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)
