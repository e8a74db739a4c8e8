"""The inputs every stage reads: the data, the student's vocabulary and initial word vectors (cheap: prepared on
every run, before the stages), and the fingerprints that tie the stages' results to them."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from bilstm_kd import cache
from bilstm_kd.config import ConfigError, RunConfig
from bilstm_kd.data.readers import Dataset, DataSource, Examples, demo_file, load_dataset
from bilstm_kd.data.statistics import statistics
from bilstm_kd.data.tables import TableFormat
from bilstm_kd.data.tasks import Task, get_preset
from bilstm_kd.pipeline.paths import RunPaths
from bilstm_kd.text.embeddings import TEACHER, EmbeddingMatrix, VectorsSource, build_vocabulary, cached_embeddings
from bilstm_kd.text.vocab import Vocabulary


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """What `prepare_inputs` found.

    Args:
        task: the task (its classes come from the data unless the flags name them).
        train: the training split.
        dev: each dev split by name (the first selects models).
        test: each test split by name (maybe none), scored once after selection.
        vocabulary: the student's vocabulary.
        embeddings: the student's initial word vectors.
        data_fingerprint: the hash of every split's texts and labels.
        student_inputs_fingerprint: the hash of the data, the vocabulary and the word vectors.
        statistics: what `data_stats.json` holds.
    """

    task: Task
    train: Examples
    dev: dict[str, Examples]
    test: dict[str, Examples]
    vocabulary: Vocabulary
    embeddings: EmbeddingMatrix
    data_fingerprint: str
    student_inputs_fingerprint: str
    statistics: dict[str, Any]


def vectors_sources(config: RunConfig) -> tuple[VectorsSource, VectorsSource]:
    """The student's word vectors (`--embeddings`), and where `--vocab_from_vectors` takes its words from."""
    student = config.student
    teacher_vectors = None
    if TEACHER in (student.embeddings, student.vocab_source):
        from bilstm_kd.teacher import word_vectors as teacher_vectors  # loads keras-hub: only when asked for
    vectors = VectorsSource(
        student.embeddings, student.embeddings_format, student.embedding_dim, config.teacher.teacher, teacher_vectors
    )
    if not student.vocab_source or student.vocab_source == student.embeddings:
        return vectors, vectors
    return vectors, dataclasses.replace(vectors, name=student.vocab_source, file_format="auto")


def data_source(config: RunConfig) -> DataSource:
    """Where the data flags say the task's data is: files, a GLUE directory or TFDS, or the demo corpus. A GLUE
    `--task` presets the columns, labels and metrics; flags the user gives win over the preset's."""
    data = config.data
    source = data.source()
    preset = get_preset(data.task or "sst2") if data.task or source == "demo" else None
    text_columns = tuple(name for name in (data.text_column, data.text_pair_column) if name)
    settings: dict[str, Any] = {
        "name": preset.name if preset else "",
        "text_columns": text_columns or (preset.text_columns if preset else ()),
        "label_column": data.label_column or (preset.label_column if preset else ""),
        "label_names": data.names(data.label_names) or (preset.label_names if preset else ()),
        "positive_label": data.positive_label or (preset.positive_label if preset else ""),
        "metrics": _preset_metrics(preset, data.select_metric) if preset else (),
        "select_metric": data.select_metric,
        "dev_fraction": data.dev_fraction,
        "train_limit": data.train_limit,
        # The regex tokenizer sees text as an app's user types it: SST-2's "do n't" is read as "don't".
        "rejoin_clitics": bool(preset and preset.pretokenized and config.student.tokenizer == "regex"),
    }
    if source == "tfds" and preset and not data.tfds_name:  # glue/<task>
        settings["text_columns"] = text_columns or preset.tfds_text_keys
        dev = dict(zip(preset.dev_splits, preset.tfds_dev_splits))
        return DataSource(
            **settings, train="train", dev=dev, tfds_name=f"glue/{preset.name}", tfds_data_dir=data.tfds_data_dir
        )
    if source == "tfds":
        train, dev, test = data.names(data.tfds_splits)
        settings["name"] = settings["name"] or data.tfds_name
        splits = {"dev": {"dev": dev} if dev else {}, "test": {"test": test} if test else {}}
        return DataSource(**settings, **splits, train=train, tfds_name=data.tfds_name, tfds_data_dir=data.tfds_data_dir)
    if source in ("glue", "demo"):
        if source == "demo":
            files = {split: demo_file(split) for split in ("train", "dev")}
        else:
            files = {split: os.path.join(data.data_dir, f"{split}.tsv") for split in ("train", *preset.dev_splits)}
        return DataSource(**settings, train=files.pop("train"), dev=files, table_format=TableFormat(format="tsv"))
    table_format = TableFormat(
        data.data_format, data.delimiter, data.header, data.names(data.column_names), data.encoding
    )
    settings["name"] = settings["name"] or _task_name(data.train_file)
    dev = {"dev": data.dev_file} if data.dev_file else {}
    test = {"test": data.test_file} if data.test_file else {}
    return DataSource(**settings, train=data.train_file, dev=dev, test=test, table_format=table_format)


def _task_name(train_file: str) -> str:
    """A name for the report: the training file's (its directory's, for a train.* file: emotion/train.txt)."""
    path = os.path.abspath(train_file)
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.basename(os.path.dirname(path)) if stem.lower().startswith("train") else stem


def _preset_metrics(preset, select: str) -> tuple[str, ...]:
    if not select or select == preset.metrics[0]:
        return preset.metrics
    if select not in preset.metrics:
        raise ConfigError("select_metric", select, f"task {preset.name} reports {', '.join(preset.metrics)}")
    return (select, *(name for name in preset.metrics if name != select))


def prepare_inputs(config: RunConfig, paths: RunPaths, dataset: Dataset | None = None, chief: bool = True) -> RunInputs:
    """Loads the data (unless `dataset` holds it already), builds the student's vocabulary (saved to
    `paths.vocabulary`) and word vectors (cached in `paths.embeddings`) and writes `data_stats.json`; only the
    `chief` worker writes."""
    started = time.perf_counter()
    dataset = dataset or load_dataset(data_source(config), config.seed, os.path.join(config.workdir, "data_split.json"))
    task, train, splits = dataset.task, dataset.train, dataset.dev
    vectors, vocabulary_vectors = vectors_sources(config)
    student = config.student
    vocabulary = build_vocabulary(
        (text for column in train.texts for text in column),
        student.vocab_min_count,
        student.vocab_max_size,
        student.vocab_from_vectors,
        vocabulary_vectors,
        student.tokenizer,
    )
    if chief:
        os.makedirs(os.path.dirname(paths.vocabulary), exist_ok=True)
        vocabulary.save(paths.vocabulary)
    embeddings = cached_embeddings(paths.embeddings, vectors, vocabulary, seed=config.seed, write=chief)
    dev_fingerprints = {split: cache.examples_fingerprint(examples) for split, examples in splits.items()}
    data_fingerprint = cache.fingerprint({"train": cache.examples_fingerprint(train), "dev": dev_fingerprints})
    student_inputs_fingerprint = cache.fingerprint(
        {"data": data_fingerprint, "vocabulary": list(vocabulary.tokens), "embeddings": embeddings.summary()}
    )
    every_split = {"train": train, **splits, **dataset.test}
    stats = {
        "task": task.name,
        "source": config.data.source(),
        "classes": list(task.label_names),
        "metrics": list(task.metrics),
        "splits": {
            split: statistics(examples, task, vocabulary.tokens, student.tokenizer)
            for split, examples in every_split.items()
        },
        "vocabulary_size": len(vocabulary),
        "embeddings": embeddings.summary(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if chief:
        cache.write_json(os.path.join(config.workdir, "data_stats.json"), stats)
    return RunInputs(
        task, train, splits, dataset.test, vocabulary, embeddings, data_fingerprint, student_inputs_fingerprint, stats
    )
