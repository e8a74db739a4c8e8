"""The Distiller: its loss against NumPy, baseline mode, metrics, round trips, tf.distribute scaling."""

import keras
import numpy as np
import pytest
from conftest import tiny_student

from bilstm_kd.data.tasks import Task
from bilstm_kd.distill.distiller import Distiller
from bilstm_kd.distill.metrics import TaskMetric


def f1(labels, predictions):
    """F1 of class 1, written out independently of the code under test."""
    true_positives = np.sum((labels == 1) & (predictions == 1))
    return 2 * true_positives / (np.sum(labels == 1) + np.sum(predictions == 1))


RNG = np.random.default_rng(0)
STUDENT_LOGITS = RNG.normal(size=(4, 3)).astype("float32")
TEACHER_LOGITS = RNG.normal(size=(4, 3)).astype("float32")
LABELS = np.array([2, -1, 0, -1], "int32")
IDS = np.array([[4, 5, 0], [6, 0, 0], [7, 8, 9], [3, 3, 0]], "int32")


def numpy_loss(alpha, labels, has_label, distill_loss="mse", mse_reduction="sum", temperature=1.0):
    def log_softmax(logits):
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    student_log_probs = log_softmax(STUDENT_LOGITS)
    cross_entropy = np.array(
        [-student_log_probs[row, label] if flag else 0.0 for row, (label, flag) in enumerate(zip(labels, has_label))]
    )
    if distill_loss == "mse":
        squared = (TEACHER_LOGITS - STUDENT_LOGITS) ** 2
        matching = squared.sum(-1) if mse_reduction == "sum" else squared.mean(-1)
    else:
        teacher = log_softmax(TEACHER_LOGITS / temperature)
        student = log_softmax(STUDENT_LOGITS / temperature)
        matching = temperature**2 * (np.exp(teacher) * (teacher - student)).sum(-1)
    return float(np.mean(alpha * cross_entropy + (1 - alpha) * matching))


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("gold", ["mixed", "none", "all"])
def test_loss_matches_numpy(alpha, gold):
    labels = {"mixed": LABELS, "none": np.full(4, -1, "int32"), "all": np.array([2, 1, 0, 1], "int32")}[gold]
    has_label = (labels >= 0).astype("int32")
    distiller = Distiller(tiny_student(12, 3), alpha=alpha)
    targets = {"teacher_logits": TEACHER_LOGITS, "label": labels, "has_label": has_label}
    loss = distiller.compute_loss(y=targets, y_pred=STUDENT_LOGITS)
    np.testing.assert_allclose(float(loss), numpy_loss(alpha, labels, has_label), rtol=1e-5)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"mse_reduction": "mean"}, {"mse_reduction": "mean"}),
        ({"distill_loss": "kl", "temperature": 1.0}, {"distill_loss": "kl", "temperature": 1.0}),
        ({"distill_loss": "kl", "temperature": 3.0}, {"distill_loss": "kl", "temperature": 3.0}),
    ],
)
def test_loss_variants_match_numpy(options, expected):
    has_label = (LABELS >= 0).astype("int32")
    distiller = Distiller(tiny_student(12, 3), alpha=0.5, **options)
    targets = {"teacher_logits": TEACHER_LOGITS, "label": LABELS, "has_label": has_label}
    loss = distiller.compute_loss(y=targets, y_pred=STUDENT_LOGITS)
    np.testing.assert_allclose(float(loss), numpy_loss(0.5, LABELS, has_label, **expected), rtol=1e-5)


def test_mean_reduction_is_sum_over_num_classes():
    targets = {"teacher_logits": TEACHER_LOGITS, "label": LABELS}
    summed = Distiller(tiny_student(12, 3), mse_reduction="sum").compute_loss(y=targets, y_pred=STUDENT_LOGITS)
    averaged = Distiller(tiny_student(12, 3), mse_reduction="mean").compute_loss(y=targets, y_pred=STUDENT_LOGITS)
    np.testing.assert_allclose(float(summed), 3 * float(averaged), rtol=1e-6)


def test_has_label_defaults_to_label_presence():
    explicit = {"teacher_logits": TEACHER_LOGITS, "label": LABELS, "has_label": (LABELS >= 0).astype("int32")}
    implicit = {"teacher_logits": TEACHER_LOGITS, "label": LABELS}
    distiller = Distiller(tiny_student(12, 3), alpha=0.5)
    np.testing.assert_allclose(
        float(distiller.compute_loss(y=explicit, y_pred=STUDENT_LOGITS)),
        float(distiller.compute_loss(y=implicit, y_pred=STUDENT_LOGITS)),
    )


def test_baseline_trains_on_gold_labels_without_teacher_logits():
    distiller = Distiller(tiny_student(12, 3), alpha=1.0)
    distiller.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95))
    history = distiller.fit(IDS, np.array([0, 1, 2, 1]), epochs=2, batch_size=2, verbose=0)
    assert "distillation_loss" not in history.history and "teacher_agreement" not in history.history
    assert np.isfinite(history.history["loss"]).all()


def test_distillation_without_teacher_logits_is_refused():
    distiller = Distiller(tiny_student(12, 3), alpha=0.5)
    distiller.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"alpha=0\.5 needs 'teacher_logits'"):
        distiller.fit(IDS, {"label": np.array([0, 1, 2, 1])}, epochs=1, verbose=0)


def test_evaluate_reports_gold_metrics_on_labelled_examples_and_teacher_agreement():
    student = tiny_student(12, num_classes=2)
    distiller = Distiller(student, task_metrics=("accuracy", "f1"))
    distiller.compile(optimizer="sgd")
    logits = student(IDS).numpy()
    predicted = logits.argmax(-1)
    labels = np.array([predicted[0], -1, 1 - predicted[2], predicted[3]])
    teacher_logits = np.eye(2, dtype="float32")[[predicted[0], predicted[1], predicted[2], 1 - predicted[3]]]
    results = distiller.evaluate(IDS, {"teacher_logits": teacher_logits, "label": labels}, return_dict=True, verbose=0)
    assert results["accuracy"] == pytest.approx(2 / 3)
    assert results["teacher_agreement"] == pytest.approx(3 / 4)
    labelled = labels >= 0
    assert results["f1"] == pytest.approx(f1(labels[labelled], predicted[labelled]))


def test_evaluation_on_gold_labels_logs_only_what_it_can_measure():
    distiller = Distiller(tiny_student(12, 3), alpha=0.0)
    distiller.compile(optimizer="sgd")
    results = distiller.evaluate(IDS, {"label": np.array([0, 1, 2, 1])}, return_dict=True, verbose=0)
    # No teacher: no distillation loss, no agreement, and no total (which would be 0 * cross-entropy).
    assert set(results) == {"accuracy", "hard_label_loss"}
    assert results["hard_label_loss"] > 0
    baseline = Distiller(tiny_student(12, 3), alpha=1.0)
    baseline.compile(optimizer="sgd")
    results = baseline.evaluate(IDS, {"label": np.array([0, 1, 2, 1])}, return_dict=True, verbose=0)
    assert results["loss"] == pytest.approx(results["hard_label_loss"])


def test_positive_class_f1_matches_the_task_metric():
    labels = np.array([1, 0, 1, 1, 0, 0])
    predictions = np.array([1, 1, 0, 1, 0, 1])
    metric = TaskMetric("f1", num_classes=2, positive_class=1)
    metric.update_state(labels, np.eye(2)[predictions])
    assert float(metric.result()) == pytest.approx(f1(labels, predictions))


def test_macro_f1_during_training_equals_evaluation():
    student = tiny_student(12, num_classes=3)
    distiller = Distiller(student, task_metrics=("macro_f1", "accuracy"))
    distiller.compile(optimizer="sgd")
    labels = np.array([0, 1, 2, 2])
    results = distiller.evaluate(IDS, {"label": labels}, return_dict=True, verbose=0, batch_size=3)
    task = Task("three", ("a", "b", "c"), metrics=("macro_f1", "accuracy"))
    expected = task.evaluate(labels, student(IDS).numpy().argmax(-1))
    assert results["macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-6)
    assert results["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)


def test_call_is_the_student():
    student = tiny_student(12, 3)
    distiller = Distiller(student)
    np.testing.assert_allclose(distiller(IDS), student(IDS))


def test_config_and_keras_file_round_trip(tmp_path):
    distiller = Distiller(tiny_student(12, 3), alpha=0.3, distill_loss="kl", temperature=2.0, task_metrics=["f1"])
    distiller.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95))
    distiller.fit(IDS, {"teacher_logits": TEACHER_LOGITS, "label": LABELS}, epochs=1, verbose=0)
    config = distiller.get_config()
    restored = Distiller.from_config(config)
    assert (restored.alpha, restored.distill_loss, restored.temperature, restored.task_metrics) == (
        0.3,
        "kl",
        2.0,
        ("f1",),
    )
    path = tmp_path / "distiller.keras"
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Distiller) and loaded.alpha == 0.3
    np.testing.assert_allclose(loaded.predict(IDS, verbose=0), distiller.predict(IDS, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"alpha": 1.5}, "alpha=1.5"),
        ({"distill_loss": "ce"}, "distill_loss='ce'"),
        ({"mse_reduction": "max"}, "mse_reduction='max'"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"task_metrics": ("auc",)}, "auc"),
    ],
)
def test_invalid_arguments_name_the_value(arguments, message):
    with pytest.raises(ValueError, match=message):
        Distiller(tiny_student(12, 3), **arguments)
