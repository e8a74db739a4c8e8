"""A task's data from files (CSV, TSV, JSON Lines, Parquet), TensorFlow Datasets or the demo corpus.

`load_dataset(source)` is the one way in: it reads the training split, fixes the class order (the given label
names, else the sorted training labels), reads the dev and test splits with it or holds out a seeded,
stratified part of the training data for dev, and returns a `Dataset`: the `Task` and the `Examples` of
each split. GLUE tasks and the demo corpus are `DataSource`s like any other (`bilstm_kd.data.tasks.PRESETS`
fixes their columns and labels). Malformed input raises `DataError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import numpy as np
import tensorflow as tf

from bilstm_kd import cache
from bilstm_kd.data.tables import EXTENSIONS, DataError, Table, TableFormat, decode_file, read_table, split_lines
from bilstm_kd.data.tasks import Task, default_metrics
from bilstm_kd.text.vocab import rejoin_clitics

DEMO_PACKAGE = "bilstm_kd.data.demo"
SPLIT_RECORD_FORMAT = 1

__all__ = ["DataError", "DataSource", "Dataset", "Examples", "demo_file", "hold_out", "load_dataset"]


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
        return self.select(np.arange(min(count, len(self))))

    def select(self, indices: np.ndarray, origin: str | None = None) -> Examples:
        """The examples at `indices`, in that order."""
        return Examples(
            tuple(column[indices] for column in self.texts),
            self.labels[indices],
            self.origin if origin is None else origin,
        )

    def to_dataset(self) -> tf.data.Dataset:
        """Elements `(text, label)`, or `((text_a, text_b), label)` for sentence pairs."""
        texts = self.texts[0] if not self.is_pair else tuple(self.texts)
        return tf.data.Dataset.from_tensor_slices((texts, self.labels))


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where a task's data is and how to read it.

    Args:
        name: the task's name, for logs and reports.
        train: the training file, or the TFDS split with `tfds_name`.
        text_columns: the text column (or the two of a pair task): file columns or TFDS feature keys.
        label_column: the label column or TFDS feature key.
        dev: named dev files (or TFDS splits); the first selects models. Empty: `dev_fraction` of the
            training data is held out as "dev".
        test: named test files (or TFDS splits), scored once after selection on dev.
        label_names: the class order; empty: the sorted training labels (numerically when all are integers).
        positive_label: the class binary F1 scores (empty: no F1).
        metrics: the metrics, the first selecting models; empty: `default_metrics`.
        select_metric: with `metrics` empty, the metric that selects models (empty: accuracy).
        table_format: how to read the files.
        tfds_name: a TensorFlow Datasets name; then `train`, `dev` and `test` are split names.
        tfds_data_dir: the TFDS data directory (empty: TFDS' default).
        dev_fraction: the share of each class held out for dev when there is no dev split.
        train_limit: keep only the first N training examples (0: all), after any held-out dev.
        rejoin_clitics: the texts are Penn-Treebank tokenized (GLUE's SST-2: "do n't"); join the clitics
            back as they are read ("don't", `text.vocab.rejoin_clitics`), for a tokenizer that sees raw text.
    """

    name: str
    train: str
    text_columns: tuple[str, ...]
    label_column: str
    dev: dict[str, str] = dataclasses.field(default_factory=dict)
    test: dict[str, str] = dataclasses.field(default_factory=dict)
    label_names: tuple[str, ...] = ()
    positive_label: str = ""
    metrics: tuple[str, ...] = ()
    select_metric: str = ""
    table_format: TableFormat = dataclasses.field(default_factory=TableFormat)
    tfds_name: str = ""
    tfds_data_dir: str = ""
    dev_fraction: float = 0.1
    train_limit: int = 0
    rejoin_clitics: bool = False

    def __post_init__(self) -> None:
        if len(self.text_columns) not in (1, 2):
            raise ValueError(f"A task has one or two text columns, got {self.text_columns}")
        if not 0.0 < self.dev_fraction < 1.0 and not self.dev:
            raise ValueError(f"dev_fraction must be between 0 and 1, got {self.dev_fraction}")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A task and its splits.

    Args:
        task: the task: class names in class-id order, pair or not, metrics.
        train: the training examples.
        dev: the dev splits by name (the first selects models).
        test: the test splits by name (maybe none).
        held_out: the record of the held-out dev split (`hold_out`), or None when dev came from its own split.
    """

    task: Task
    train: Examples
    dev: dict[str, Examples]
    test: dict[str, Examples]
    held_out: dict[str, Any] | None = None


def demo_file(split: str) -> str:
    """The path of the demo corpus' `train` or `dev` TSV file (SST-2's columns)."""
    with resources.as_file(resources.files(DEMO_PACKAGE) / f"{split}.tsv") as path:
        return os.fspath(path)


def load_dataset(source: DataSource, seed: int = 0, split_record: str = "") -> Dataset:
    """Reads every split of `source`.

    Args:
        source: where the data is.
        seed: seeds the held-out dev split.
        split_record: a JSON file recording which training rows were held out for dev (written on first use,
            reused while the training data is unchanged, so a resumed run holds out the same rows).
    """
    if source.tfds_name:
        builder = _tfds_builder(source)
        available = set(builder.info.splits)  # a dev split the dataset lacks is held out; a test split, skipped
        dev, test = (
            {name: split for name, split in splits.items() if split in available}
            for splits in (source.dev, source.test)
        )
        source = dataclasses.replace(source, dev=dev, test=test)
        read = _tfds_reader(source, builder)
    else:
        read = _file_reader(source)
    if source.rejoin_clitics:
        read = _rejoining(read)
    train_raw = read(source.train)
    label_names = source.label_names or train_raw.class_order or _label_order(train_raw.labels)
    if len(label_names) < 2:
        raise DataError(f"{train_raw.origin}: every training label is {label_names[0]!r}; a task needs two classes")
    if source.positive_label and source.positive_label not in label_names:
        raise DataError(
            f"--positive_label={source.positive_label!r} is not a label of {train_raw.origin}; "
            f"labels: {', '.join(label_names)}"
        )
    known = "--label_names" if source.label_names else "training"
    train = train_raw.examples(label_names, known)
    held_out = None
    if source.dev:
        dev = {name: read(where).examples(label_names, known) for name, where in source.dev.items()}
    else:
        train, dev_examples, held_out = _held_out(train, source, seed, split_record)
        dev = {"dev": dev_examples}
    test = {name: read(where).examples(label_names, known) for name, where in source.test.items()}
    try:
        metrics = source.metrics or default_metrics(len(label_names), source.positive_label, source.select_metric)
    except ValueError as error:
        raise DataError(f"--select_metric={source.select_metric}: {error} ({train_raw.origin})") from None
    task = Task(source.name, tuple(label_names), len(source.text_columns) == 2, metrics, source.positive_label)
    return Dataset(task, train.take(source.train_limit), dev, test, held_out)


def _rejoining(read: Callable[[str], _RawSplit]) -> Callable[[str], _RawSplit]:
    def read_rejoined(where: str) -> _RawSplit:
        raw = read(where)
        texts = tuple(np.array([rejoin_clitics(text) for text in column], dtype=column.dtype) for column in raw.texts)
        return dataclasses.replace(raw, texts=texts)

    return read_rejoined


def read_examples(
    path: str,
    text_columns: tuple[str, ...],
    label_column: str,
    label_names: Sequence[str],
    table_format: TableFormat | None = None,
) -> Examples:
    """One labelled file read with a known class order (a trained model's): a label outside `label_names`
    is an error naming its line."""
    source = DataSource("", path, text_columns, label_column, table_format=table_format or TableFormat())
    return _file_reader(source)(path).examples(label_names, "model's")


def read_texts(path: str, text_columns: tuple[str, ...], table_format: TableFormat | None = None) -> list[list[str]]:
    """The texts to classify: the `text_columns` of a CSV, TSV, JSON Lines or Parquet file, or, for any other
    file (or "-", standard input), one text per line (a pair as two tab-separated texts). Empty texts stay."""
    return read_rows(path, text_columns, table_format)[0]


def read_rows(
    path: str, text_columns: tuple[str, ...], table_format: TableFormat | None = None
) -> tuple[list[list[str]], dict[str, list[Any]]]:
    """`read_texts`, with every column of the file as read, by name, to pass on beside each row's answer: a
    data file's own columns, or a text file's texts as "text" (a pair: "text_a", "text_b")."""
    table_format = table_format or TableFormat()
    if path == "-" or (table_format.format == "auto" and os.path.splitext(path)[1].lower() not in EXTENSIONS):
        text = sys.stdin.read() if path == "-" else decode_file(path, table_format.encoding)
        rows = [line.split("\t") if len(text_columns) == 2 else [line] for line in split_lines(text)]
        for number, row in enumerate(rows, start=1):
            if len(row) != len(text_columns):
                raise DataError(f"{path}, line {number}: a pair needs two tab-separated texts, found {len(row)}")
            for value in row:
                _check_encodable(value, f"{path}, line {number}")
        texts = [[row[i].strip() for row in rows] for i in range(len(text_columns))]
        return texts, dict(zip(("text",) if len(texts) == 1 else ("text_a", "text_b"), texts))
    table = read_table(path, table_format)
    flags = ("text_column", "text_pair_column")
    columns = [[_cell(value) for value in table.column(c, f)] for c, f in zip(text_columns, flags)]
    for column in columns:
        for row, text in enumerate(column):
            _check_encodable(text, table.where(row))
    return columns, table.columns


@dataclasses.dataclass(frozen=True)
class _RawSplit:
    """One split as read: texts, the labels as strings, and where each row is, before the class order is known."""

    origin: str
    texts: tuple[np.ndarray, ...]
    labels: list[str]
    where: Callable[[int], str]  # row index -> "<file>, line N"
    class_order: tuple[str, ...] = ()  # a TFDS ClassLabel's names

    def examples(self, label_names: Sequence[str], known_from: str) -> Examples:
        ids = {name: index for index, name in enumerate(label_names)}
        labels = np.empty(len(self.labels), np.int32)
        for row, label in enumerate(self.labels):
            if label not in ids:
                raise DataError(
                    f"{self.where(row)}: label {label!r} is not among the {known_from} labels ({_preview(label_names)})"
                )
            labels[row] = ids[label]
        return Examples(self.texts, labels, self.origin)


def _file_reader(source: DataSource):
    def read(path: str) -> _RawSplit:
        table = read_table(path, source.table_format)
        flags = ("text_column", "text_pair_column")
        texts = tuple(
            _texts(table, table.column(column, flag), column) for column, flag in zip(source.text_columns, flags)
        )
        labels = [
            _label(table, row, value) for row, value in enumerate(table.column(source.label_column, "label_column"))
        ]
        return _RawSplit(table.path, texts, labels, table.where)

    return read


def _cell(value: Any) -> str:
    """A file's value as text: stripped, empty for a missing (None) value."""
    return "" if value is None else str(value).strip()


def _check_encodable(text: str, where: str) -> None:
    """A JSON escape such as "\\ud800" (or undecodable standard input) gives a lone surrogate, which no
    UTF-8 string (TensorFlow's, a model file's) can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataError(
            f"{where}: character {text[error.start]!r} is half of a UTF-16 surrogate pair, not text"
        ) from None


def _texts(table: Table, values: list[Any], column: str) -> np.ndarray:
    texts = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):
        text = _cell(value)
        if not text:
            raise DataError(f"{table.where(row)}: empty text in column {column!r}")
        _check_encodable(text, table.where(row))
        texts[row] = text
    return texts


def _label(table: Table, row: int, value: Any) -> str:
    if isinstance(value, float) and value.is_integer():  # Parquet or JSON numbers: 3.0 is the label 3
        value = int(value)
    label = _cell(value)
    if not label:
        raise DataError(f"{table.where(row)}: empty label")
    _check_encodable(label, table.where(row))
    if any(unicodedata.category(character) in ("Cc", "Zl", "Zp") for character in label):
        raise DataError(
            f"{table.where(row)}: label {label!r} holds a line break or control character; "
            "labels.txt and the phone file's labels are one per line"
        )
    return label


def _label_order(labels: list[str]) -> tuple[str, ...]:
    """The distinct labels sorted: as integers when all are integers (2 before 10), else as strings."""
    distinct = set(labels)
    try:
        return tuple(sorted(distinct, key=int))
    except ValueError:
        return tuple(sorted(distinct))


def _preview(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def hold_out(examples: Examples, fraction: float, seed: int) -> np.ndarray:
    """The sorted indices of a seeded, stratified `fraction` of `examples`: of each class with at least two
    examples, `round(fraction * count)` of them (at least one, never all)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(examples.labels):
        members = np.flatnonzero(examples.labels == label)
        if len(members) < 2:
            continue
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        chosen.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _held_out(train: Examples, source: DataSource, seed: int, split_record: str):
    record = {
        "format": SPLIT_RECORD_FORMAT,
        "train": cache.examples_fingerprint(train),
        "seed": seed,
        "dev_fraction": source.dev_fraction,
    }
    recorded = cache.read_json(split_record) if split_record else None
    if recorded and {key: recorded.get(key) for key in record} == record:
        dev_rows = np.asarray(recorded["dev_rows"], np.int64)
    else:
        dev_rows = hold_out(train, source.dev_fraction, seed)
        record["dev_rows"] = dev_rows.tolist()
        record["rows"] = "0-based data rows of the training file (header excluded) held out for dev"
        if split_record:
            os.makedirs(os.path.dirname(split_record) or ".", exist_ok=True)
            cache.write_json(split_record, record)
        recorded = record
    if not len(dev_rows):
        raise DataError(f"{train.origin}: too few examples to hold out a dev split; give a --dev_file")
    keep = np.setdiff1d(np.arange(len(train)), dev_rows)
    origin = f"{train.origin} (held out: {source.dev_fraction:g} of each class, seed {seed})"
    return train.select(keep), train.select(dev_rows, origin), recorded


def _tfds_builder(source: DataSource):
    """The prepared TFDS builder of `source` (downloaded and prepared when it is not yet)."""
    import tensorflow_datasets as tfds

    name = source.tfds_name
    try:
        builder = tfds.builder(name, data_dir=source.tfds_data_dir or None)
        builder.download_and_prepare()
        return builder
    except Exception as error:  # TFDS raises many kinds of errors when offline
        raise DataError(
            f"Could not load TensorFlow Datasets {name} from {source.tfds_data_dir or 'the default TFDS directory'}: "
            f"{error}. Offline, prepare the dataset in a --tfds_data_dir on a machine with internet, or give the "
            "data as files (--train_file)."
        ) from error


def _tfds_reader(source: DataSource, builder):
    def read(split: str) -> _RawSplit:
        import tensorflow_datasets as tfds

        name = source.tfds_name
        if split not in builder.info.splits:
            raise DataError(f"TFDS {name} has no split {split!r}; its splits are {', '.join(builder.info.splits)}")
        dataset = builder.as_dataset(split=split)
        features = builder.info.features
        for key in (*source.text_columns, source.label_column):
            if key not in features:
                raise DataError(f"TFDS {name} has no feature {key!r}; its features are {', '.join(features)}")
        names = tuple(getattr(features[source.label_column], "names", None) or ())
        columns: list[list[str]] = [[] for _ in source.text_columns]
        labels: list[str] = []
        for example in tfds.as_numpy(dataset):
            for column, key in zip(columns, source.text_columns):
                value = example[key]
                column.append((value.decode("utf-8") if isinstance(value, bytes) else str(value)).strip())
            label = example[source.label_column]
            if names and not 0 <= int(label) < len(names):
                raise DataError(
                    f"TFDS {name} split {split}, example {len(labels) + 1}: label {int(label)} (unlabelled?)"
                )
            labels.append(names[int(label)] if names else _decoded(label))
        origin = f"{name}[{split}]"
        for column, key in zip(columns, source.text_columns):
            if "" in column:
                raise DataError(f"TFDS {origin}, example {column.index('') + 1}: empty text in feature {key!r}")
        texts = tuple(np.array(column, dtype=object) for column in columns)
        order = names if names and not source.label_names else ()
        if names and source.label_names:  # a preset renames TFDS' classes (GLUE's "0", "1") in class-id order
            if len(names) != len(source.label_names):
                raise DataError(f"TFDS {name} has {len(names)} classes, the task {len(source.label_names)}")
            labels = [source.label_names[names.index(label)] for label in labels]
        return _RawSplit(origin, texts, labels, lambda row: f"TFDS {origin}, example {row + 1}", order)

    return read


def _decoded(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
