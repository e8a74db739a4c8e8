"""The GLUE classification tasks: where their text and labels are, and how they are scored."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Task:
    """What a task's data looks like and how it is scored.

    Args:
        name: short name, also the `--task` flag value and the TFDS config (`glue/<name>`).
        glue_name: the task's directory name in the GLUE release.
        text_columns: header names of the text columns in the GLUE TSV files (one, or two for pairs).
        label_column: header name of the label column (MRPC's is "Quality").
        label_names: the labels in class-index order, as written in the TSV files.
        metrics: metric names reported on dev, the first being the one models are selected by.
        dev_splits: the dev sets (MNLI has a matched and a mismatched one).
        tfds_text_keys: feature names of the texts in TensorFlow Datasets' `glue/<name>`.
        tfds_dev_splits: TFDS split names of `dev_splits`, in the same order.
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

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def expected_layout(self) -> str:
        """The files a GLUE directory of this task must hold, for error messages."""
        splits = ", ".join(f"{split}.tsv" for split in ("train", *self.dev_splits))
        columns = ", ".join((*self.text_columns, self.label_column))
        return f"a GLUE {self.glue_name} directory with {splits} (tab-separated, header row with {columns})"

    def evaluate(self, labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
        """The task's metrics of predicted class ids against gold class ids."""
        return {name: METRICS[name](np.asarray(labels), np.asarray(predictions)) for name in self.metrics}


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    if labels.size == 0:
        return float("nan")
    return float(np.mean(labels == predictions))


def f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 of the positive class (class 1: "paraphrase" / "duplicate"), as GLUE reports it."""
    true_positives = np.sum((predictions == 1) & (labels == 1))
    predicted, actual = np.sum(predictions == 1), np.sum(labels == 1)
    if predicted + actual == 0:
        return 0.0
    return float(2 * true_positives / (predicted + actual))


METRICS = {"accuracy": accuracy, "f1": f1}

TASKS = {
    task.name: task
    for task in (
        Task(
            name="sst2",
            glue_name="SST-2",
            text_columns=("sentence",),
            label_column="label",
            label_names=("0", "1"),
            metrics=("accuracy",),
            dev_splits=("dev",),
            tfds_text_keys=("sentence",),
            tfds_dev_splits=("validation",),
        ),
        Task(
            name="mrpc",
            glue_name="MRPC",
            text_columns=("#1 String", "#2 String"),
            label_column="Quality",
            label_names=("0", "1"),
            metrics=("f1", "accuracy"),
            dev_splits=("dev",),
            tfds_text_keys=("sentence1", "sentence2"),
            tfds_dev_splits=("validation",),
        ),
        Task(
            name="rte",
            glue_name="RTE",
            text_columns=("sentence1", "sentence2"),
            label_column="label",
            label_names=("entailment", "not_entailment"),
            metrics=("accuracy",),
            dev_splits=("dev",),
            tfds_text_keys=("sentence1", "sentence2"),
            tfds_dev_splits=("validation",),
        ),
        Task(
            name="qqp",
            glue_name="QQP",
            text_columns=("question1", "question2"),
            label_column="is_duplicate",
            label_names=("0", "1"),
            metrics=("f1", "accuracy"),
            dev_splits=("dev",),
            tfds_text_keys=("question1", "question2"),
            tfds_dev_splits=("validation",),
        ),
        Task(
            name="mnli",
            glue_name="MNLI",
            text_columns=("sentence1", "sentence2"),
            label_column="gold_label",
            label_names=("entailment", "neutral", "contradiction"),
            metrics=("accuracy",),
            dev_splits=("dev_matched", "dev_mismatched"),
            tfds_text_keys=("premise", "hypothesis"),
            tfds_dev_splits=("validation_matched", "validation_mismatched"),
        ),
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"Unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
