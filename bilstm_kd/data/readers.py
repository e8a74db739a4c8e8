"""Task data from a GLUE directory, TensorFlow Datasets or the demo corpus shipped with the package.

Every source gives `Examples`: the texts (one or two columns) and integer labels of one split, held in
memory (the largest GLUE training set, MNLI's, is ~400k pairs) and turned into a `tf.data.Dataset` on
demand. Malformed input fails with the file, line and problem.
"""

from __future__ import annotations

import dataclasses
import os
from importlib import resources

import numpy as np
import tensorflow as tf

from bilstm_kd.data import SOURCES
from bilstm_kd.data.tasks import Task

DEMO_PACKAGE = "bilstm_kd.data.demo"


class DataError(ValueError):
    """Input data is malformed or missing; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Examples:
    """The labelled examples of one split.

    Args:
        texts: one 1-D array of strings per text column (one column, or two for sentence pairs).
        labels: int32 class ids, one per example.
        origin: where the examples came from (a path or a dataset name), for logs and reports.
    """

    texts: tuple[np.ndarray, ...]
    labels: np.ndarray
    origin: str = ""

    def __post_init__(self) -> None:
        sizes = {len(column) for column in self.texts} | {len(self.labels)}
        if len(sizes) != 1:
            raise ValueError(f"Examples from {self.origin or 'memory'}: columns have different lengths {sizes}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.texts) == 2

    def take(self, count: int) -> Examples:
        """The first `count` examples (all of them when `count` is 0)."""
        if not count:
            return self
        return Examples(tuple(column[:count] for column in self.texts), self.labels[:count], self.origin)

    def to_dataset(self) -> tf.data.Dataset:
        """Elements `(text, label)`, or `((text_a, text_b), label)` for sentence pairs."""
        texts = self.texts[0] if not self.is_pair else tuple(self.texts)
        return tf.data.Dataset.from_tensor_slices((texts, self.labels))


def load_split(
    task: Task, split: str, source: str = "demo", data_dir: str = "", tfds_data_dir: str = "", train_limit: int = 0
) -> Examples:
    """Loads `split` ("train" or one of the task's dev splits) of `task`.

    Args:
        task: the task.
        split: "train" or one of `task.dev_splits`.
        source: one of `SOURCES`: a GLUE directory (`data_dir`), TensorFlow Datasets (`tfds_data_dir`, empty
            for TFDS' default) or the demo corpus shipped with the package.
        train_limit: keep only the first N training examples (0: all).
    """
    if split not in ("train", *task.dev_splits):
        raise ValueError(f"Task {task.name} has no split {split!r}; splits: train, {', '.join(task.dev_splits)}")
    if source == "glue":
        examples = read_glue_tsv(os.path.join(data_dir, f"{split}.tsv"), task)
    elif source == "tfds":
        examples = read_tfds(task, split, tfds_data_dir)
    elif source == "demo":
        with resources.as_file(resources.files(DEMO_PACKAGE) / f"{split}.tsv") as path:
            examples = read_glue_tsv(path, task)
    else:
        raise ValueError(f"Unknown data source {source!r}; sources: {', '.join(SOURCES)}")
    return examples.take(train_limit) if split == "train" else examples


def read_glue_tsv(path: str | os.PathLike, task: Task) -> Examples:
    """Reads one GLUE TSV file: tab-separated, no quoting, a header row, an optional byte-order mark.

    Columns are found by their header names, so the extra columns of MNLI or QQP need no special case.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path} does not exist. Task {task.name} expects {task.expected_layout()}.")
    with open(path, encoding="utf-8-sig", newline="") as file:
        lines = file.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError(f"{path} is empty. Task {task.name} expects {task.expected_layout()}.")
    header = lines[0].rstrip("\r").split("\t")
    missing = [name for name in (*task.text_columns, task.label_column) if name not in header]
    if missing:
        raise DataError(
            f"{path}, line 1: header {header} lacks column(s) {missing}. "
            f"Task {task.name} expects {task.expected_layout()}."
        )
    text_indices = [header.index(name) for name in task.text_columns]
    label_index = header.index(task.label_column)
    label_ids = {name: index for index, name in enumerate(task.label_names)}
    columns: list[list[str]] = [[] for _ in text_indices]
    labels: list[int] = []
    for line_number, line in enumerate(lines[1:], start=2):
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(header):
            raise DataError(
                f"{path}, line {line_number}: expected {len(header)} tab-separated fields, found {len(fields)}"
            )
        label = fields[label_index].strip()
        if label not in label_ids:
            raise DataError(
                f"{path}, line {line_number}: unknown label {label!r} for task {task.name}; "
                f"labels are {', '.join(task.label_names)}"
            )
        for column, index in zip(columns, text_indices):
            text = fields[index].strip()
            if not text:
                raise DataError(f"{path}, line {line_number}: empty text in column {header[index]!r}")
            column.append(text)
        labels.append(label_ids[label])
    return Examples(
        tuple(np.array(column, dtype=object) for column in columns), np.array(labels, dtype=np.int32), origin=path
    )


def read_tfds(task: Task, split: str, data_dir: str = "", download: bool = True) -> Examples:
    """Reads `glue/<task>` from TensorFlow Datasets, prepared in `data_dir` (or downloaded and prepared)."""
    import tensorflow_datasets as tfds

    tfds_split = "train" if split == "train" else task.tfds_dev_splits[task.dev_splits.index(split)]
    name = f"glue/{task.name}"
    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
        if download:
            builder.download_and_prepare()
        dataset = builder.as_dataset(split=tfds_split)
    except Exception as error:  # TFDS raises many kinds of errors when offline
        raise DataError(
            f"Could not load TensorFlow Datasets {name} (split {tfds_split}) from "
            f"{data_dir or 'the default TFDS directory'}: {error}. Offline, prepare the dataset in a "
            f"--tfds_data_dir on a machine with internet, or use --data_source=glue --data_dir=<GLUE {task.glue_name} "
            f"directory>."
        ) from error
    columns: list[list[str]] = [[] for _ in task.tfds_text_keys]
    labels = []
    for example in tfds.as_numpy(dataset):
        for column, key in zip(columns, task.tfds_text_keys):
            column.append(example[key].decode("utf-8").strip())
        labels.append(int(example["label"]))
    label_array = np.array(labels, dtype=np.int32)
    if np.any((label_array < 0) | (label_array >= task.num_classes)):
        raise DataError(f"{name} split {tfds_split} has labels outside 0..{task.num_classes - 1} (a test split?)")
    return Examples(tuple(np.array(column, dtype=object) for column in columns), label_array, origin=name)
