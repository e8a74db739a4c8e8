"""Task metrics against hand-computed values: one confusion-matrix code for evaluation and training."""

import numpy as np
import pytest

from bilstm_kd.data.tasks import PRESETS, Task, default_metrics, get_task
from bilstm_kd.distill.metrics import TaskMetric

# Gold and predicted classes of seven examples; the confusion matrix (rows gold) is
#   [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
PREDICTIONS = np.array([0, 1, 1, 1, 2, 0, 2])


def test_multi_class_metrics_by_hand():
    task = Task("three", ("a", "b", "c"), metrics=("accuracy", "macro_f1", "f1"), positive_label="b")
    assert task.confusion(LABELS, PREDICTIONS).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    scores = task.evaluate(LABELS, PREDICTIONS)
    # accuracy 5/7; F1 per class: a 2*1/(2+2) = 0.5, b 2*2/(3+2) = 0.8, c 2*2/(2+3) = 0.8.
    assert scores == pytest.approx({"accuracy": 5 / 7, "macro_f1": 0.7, "f1": 0.8})
    per_class = task.per_class(LABELS, PREDICTIONS)
    assert per_class["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert per_class["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert per_class["c"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})


def test_macro_f1_leaves_out_classes_neither_gold_nor_predicted():
    task = Task("four", ("a", "b", "c", "d"), metrics=("macro_f1",))
    assert task.evaluate(LABELS, PREDICTIONS)["macro_f1"] == pytest.approx(0.7)  # "d" never occurs
    assert np.isnan(task.evaluate(np.array([], int), np.array([], int))["macro_f1"])


def test_keras_metric_accumulates_the_same_scores_over_batches():
    logits = np.eye(3, dtype="float32")[PREDICTIONS]
    for name, expected in (("accuracy", 5 / 7), ("macro_f1", 0.7), ("f1", 0.8)):
        metric = TaskMetric(name, num_classes=3, positive_class=1)
        metric.update_state(LABELS[:3], logits[:3])
        metric.update_state(LABELS[3:], logits[3:])
        assert float(metric.result()) == pytest.approx(expected, abs=1e-6), name


def test_default_metrics_and_selection():
    assert default_metrics(2) == ("accuracy",)
    assert default_metrics(6) == ("accuracy", "macro_f1")
    assert default_metrics(2, "spam", select="f1") == ("f1", "accuracy")
    with pytest.raises(ValueError, match="needs a --positive_label"):
        default_metrics(3, select="f1")
    with pytest.raises(ValueError, match="needs more than two classes"):
        default_metrics(2, select="macro_f1")


def test_glue_presets_keep_their_metrics_and_labels():
    assert get_task("mrpc").metrics == ("f1", "accuracy") and get_task("mrpc").positive_class == 1
    assert get_task("mnli").label_names == ("entailment", "neutral", "contradiction")
    assert {name for name, preset in PRESETS.items() if preset.is_pair} == {"mrpc", "rte", "qqp", "mnli"}


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"label_names": ("a",)}, "at least two classes"),
        ({"label_names": ("a", "a")}, "repeats a class name"),
        ({"label_names": ("a", "b"), "metrics": ("auc",)}, "metrics must be some of"),
        ({"label_names": ("a", "b"), "metrics": ("f1",)}, "f1 needs a positive label"),
        ({"label_names": ("a", "b"), "positive_label": "c"}, "not one of its classes"),
    ],
)
def test_invalid_tasks(arguments, message):
    with pytest.raises(ValueError, match=message):
        Task("bad", **arguments)
