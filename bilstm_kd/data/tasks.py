"""Tasks: their classes and how they are scored, and the GLUE tasks as named presets of file columns and labels.

A `Task` is what every stage needs to know of the data: the class names (in class-id order), whether it is a
sentence-pair task and its metrics, the first selecting the best epoch. A user's task gets it from the data
(`readers.load_dataset`); a `Preset` holds what a GLUE task fixes in advance. Scores come from a confusion
matrix through `scores`, the one metric code shared by evaluation (NumPy) and training (Keras metrics).
"""

from __future__ import annotations

import dataclasses

import numpy as np

METRICS = ("accuracy", "macro_f1", "f1")
"""accuracy; macro_f1, the mean F1 of the classes that occur in the labels or predictions; f1, the F1 of the
task's positive label."""


@dataclasses.dataclass(frozen=True)
class Task:
    """A classification task.

    Args:
        name: a short name, for logs and reports.
        label_names: the class names in class-id order (at least two).
        is_pair: whether each example is a pair of texts.
        metrics: names from `METRICS` reported on dev and test; the first selects the best epoch.
        positive_label: the class `f1` scores (one of `label_names`); empty without `f1`.
    """

    name: str
    label_names: tuple[str, ...]
    is_pair: bool = False
    metrics: tuple[str, ...] = ("accuracy",)
    positive_label: str = ""

    def __post_init__(self) -> None:
        if len(self.label_names) < 2:
            raise ValueError(f"Task {self.name!r} needs at least two classes, got {list(self.label_names)}")
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"Task {self.name!r} repeats a class name: {list(self.label_names)}")
        unknown = [name for name in self.metrics if name not in METRICS]
        if unknown or not self.metrics:
            raise ValueError(f"Task {self.name!r}: metrics must be some of {', '.join(METRICS)}, got {self.metrics}")
        if self.positive_label and self.positive_label not in self.label_names:
            raise ValueError(
                f"Task {self.name!r}: the positive label {self.positive_label!r} is not one of its classes "
                f"{', '.join(self.label_names)}"
            )
        if "f1" in self.metrics and not self.positive_label:
            raise ValueError(f"Task {self.name!r}: metric f1 needs a positive label")

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def positive_class(self) -> int:
        """The class id `f1` scores (0 when the task has no positive label)."""
        return self.label_names.index(self.positive_label) if self.positive_label else 0

    def confusion(self, labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        """Counts of (gold class, predicted class), shape `[num_classes, num_classes]`."""
        labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
        cells = labels * self.num_classes + predictions
        return np.bincount(cells, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

    def evaluate(self, labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
        """The task's metrics of predicted class ids against gold class ids (NaN for no examples)."""
        if np.size(labels) == 0:
            return {name: float("nan") for name in self.metrics}
        scores_by_name = scores(self.confusion(labels, predictions), self.metrics, self.positive_class)
        return {name: float(value) for name, value in scores_by_name.items()}

    def evaluate_in_detail(self, labels: np.ndarray, predictions: np.ndarray) -> dict:
        """`evaluate`, with `per_class` scores and the `confusion` matrix (rows gold, columns predicted)."""
        return {
            **self.evaluate(labels, predictions),
            "per_class": self.per_class(labels, predictions),
            "confusion": self.confusion(labels, predictions).tolist(),
        }

    def per_class(self, labels: np.ndarray, predictions: np.ndarray) -> dict[str, dict[str, float]]:
        """Precision, recall, F1 and support of each class, by class name."""
        confusion = self.confusion(labels, predictions)
        precision, recall, f1 = (np.asarray(part) for part in per_class_scores(confusion))
        support = confusion.sum(axis=1)
        return {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(self.label_names)
        }


def per_class_scores(confusion):
    """Per-class precision, recall and F1 of a confusion matrix (rows gold, columns predicted); 0 where a
    class is never predicted (precision), never gold (recall) or neither (F1). `keras.ops`, so one code
    serves NumPy evaluation and the Keras training metrics."""
    from keras import ops

    confusion = ops.cast(confusion, "float32")
    true_positives = ops.diagonal(confusion)
    predicted, actual = ops.sum(confusion, axis=0), ops.sum(confusion, axis=1)

    def ratio(numerator, denominator):
        return ops.where(denominator > 0, numerator / ops.maximum(denominator, 1e-12), 0.0)

    return (
        ratio(true_positives, predicted),
        ratio(true_positives, actual),
        ratio(2 * true_positives, predicted + actual),
    )


def scores(confusion, names: tuple[str, ...] | list[str], positive_class: int = 0) -> dict:
    """The metrics `names` (of `METRICS`) of a confusion matrix (a NumPy array or a tensor), as tensors."""
    from keras import ops

    confusion = ops.cast(confusion, "float32")
    _, _, f1 = per_class_scores(confusion)
    occurs = ops.cast((ops.sum(confusion, axis=0) + ops.sum(confusion, axis=1)) > 0, "float32")
    values = {
        "accuracy": lambda: ops.sum(ops.diagonal(confusion)) / ops.maximum(ops.sum(confusion), 1.0),
        "macro_f1": lambda: ops.sum(f1 * occurs) / ops.maximum(ops.sum(occurs), 1.0),
        "f1": lambda: f1[positive_class],
    }
    return {name: values[name]() for name in names}


def default_metrics(num_classes: int, positive_label: str = "", select: str = "") -> tuple[str, ...]:
    """Accuracy; macro-F1 with more than two classes; F1 of the positive label when there is one. `select`
    (one of them) goes first: it picks the best epoch."""
    metrics = ["accuracy"]
    if num_classes > 2:
        metrics.append("macro_f1")
    if positive_label:
        metrics.append("f1")
    if select:
        if select not in METRICS:
            raise ValueError(f"Unknown metric {select!r}; metrics: {', '.join(METRICS)}")
        if select not in metrics:
            needs = "a --positive_label" if select == "f1" else "more than two classes"
            raise ValueError(f"Metric {select!r} needs {needs}")
        metrics.remove(select)
        metrics.insert(0, select)
    return tuple(metrics)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A GLUE task: where its text and labels are, and how it is scored.

    Args:
        name: short name, the `--task` flag value and the TFDS config (`glue/<name>`).
        glue_name: the task's directory name in the GLUE release.
        text_columns: header names of the text columns in the GLUE TSV files (one, or two for pairs).
        label_column: header name of the label column (MRPC's is "Quality").
        label_names: the labels in class-index order, as written in the TSV files.
        metrics: metric names reported on dev, the first being the one models are selected by.
        positive_label: the class GLUE's F1 scores (MRPC, QQP).
        dev_splits: the dev sets (MNLI has a matched and a mismatched one).
        tfds_text_keys: feature names of the texts in TensorFlow Datasets' `glue/<name>`.
        tfds_dev_splits: TFDS split names of `dev_splits`, in the same order.
        pretokenized: the text is Penn-Treebank tokenized ("do n't"), as SST-2's.
    """

    name: str
    glue_name: str
    text_columns: tuple[str, ...]
    label_column: str
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    dev_splits: tuple[str, ...]
    tfds_text_keys: tuple[str, ...]
    tfds_dev_splits: tuple[str, ...]
    positive_label: str = ""
    pretokenized: bool = False

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    def task(self) -> Task:
        return Task(self.name, self.label_names, self.is_pair, self.metrics, self.positive_label)


def _glue(name, glue_name, text_columns, label_column="label", label_names=("0", "1"), f1=False, **splits) -> Preset:
    return Preset(
        name=name,
        glue_name=glue_name,
        text_columns=text_columns,
        label_column=label_column,
        label_names=label_names,
        metrics=("f1", "accuracy") if f1 else ("accuracy",),
        positive_label="1" if f1 else "",
        dev_splits=splits.get("dev_splits", ("dev",)),
        tfds_text_keys=splits.get("tfds_text_keys", text_columns),
        tfds_dev_splits=splits.get("tfds_dev_splits", ("validation",)),
        pretokenized=splits.get("pretokenized", False),
    )


PRESETS = {
    preset.name: preset
    for preset in (
        _glue("sst2", "SST-2", ("sentence",), pretokenized=True),
        _glue(
            "mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", f1=True, tfds_text_keys=("sentence1", "sentence2")
        ),
        _glue("rte", "RTE", ("sentence1", "sentence2"), label_names=("entailment", "not_entailment")),
        _glue("qqp", "QQP", ("question1", "question2"), "is_duplicate", f1=True),
        _glue(
            "mnli",
            "MNLI",
            ("sentence1", "sentence2"),
            "gold_label",
            ("entailment", "neutral", "contradiction"),
            dev_splits=("dev_matched", "dev_mismatched"),
            tfds_text_keys=("premise", "hypothesis"),
            tfds_dev_splits=("validation_matched", "validation_mismatched"),
        ),
    )
}
TASKS = PRESETS  # the `--task` values


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown task {name!r}; known tasks: {', '.join(PRESETS)}") from None


def get_task(name: str) -> Task:
    """The `Task` of a GLUE preset."""
    return get_preset(name).task()
