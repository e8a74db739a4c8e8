"""The distillation pipeline: stages that read and write one run directory.

    config.json            the resolved run configuration
    data_stats.json        dataset statistics, vocabulary size and word-vector coverage
    teacher/ transfer/ student/ export/ report.json report.md

Each stage is a function of the run configuration and the run directory.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from absl import logging

from bilstm_kd.config import RunConfig
from bilstm_kd.data import Examples, load_split, statistics
from bilstm_kd.embeddings import build_embeddings
from bilstm_kd.tasks import get_task
from bilstm_kd.vocab import Vocabulary

AVAILABLE_STAGES: tuple[str, ...] = ()


def write_json(path: str, values: Any) -> None:
    """Writes JSON atomically: a reader never sees a half-written file."""
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(values, file, indent=2, sort_keys=True)
        file.write("\n")
    os.replace(temporary, path)


def load_data(config: RunConfig) -> tuple[Examples, dict[str, Examples]]:
    """The training split and every dev split of the configured task."""
    task = get_task(config.data.task)
    train = load_split(config.data, "train")
    dev = {split: load_split(config.data, split) for split in task.dev_splits}
    return train, dev


def build_vocabulary(config: RunConfig, train: Examples) -> Vocabulary:
    texts = (text for column in train.texts for text in column)
    return Vocabulary.from_texts(texts, config.student.vocab_min_count, config.student.vocab_max_size)


def prepare(config: RunConfig) -> dict[str, Any]:
    """Loads the data, builds the student vocabulary and embeddings, and writes their statistics."""
    started = time.perf_counter()
    task = get_task(config.data.task)
    train, dev = load_data(config)
    vocabulary = build_vocabulary(config, train)
    student_dir = os.path.join(config.workdir, "student")
    os.makedirs(student_dir, exist_ok=True)
    vocabulary.save(os.path.join(student_dir, "vocab.txt"))
    embeddings = build_embeddings(config.student, vocabulary, seed=config.seed)
    stats = {
        "task": task.name,
        "source": config.data.data_source,
        "splits": {"train": statistics(train, task)} | {split: statistics(dev[split], task) for split in dev},
        "vocabulary_size": len(vocabulary),
        "embeddings": embeddings.summary(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(os.path.join(config.workdir, "data_stats.json"), stats)
    return stats


def format_statistics(stats: dict[str, Any]) -> str:
    lines = [f"Task {stats['task']} ({stats['source']})"]
    for split, values in stats["splits"].items():
        balance = ", ".join(f"{label}: {count}" for label, count in values["labels"].items())
        words = "  ".join(
            f"{column} words mean {values[column + '_words']['mean']} max {values[column + '_words']['max']}"
            for column in ("text_a", "text_b")
            if column + "_words" in values
        )
        lines.append(f"  {split:<15} {values['rows']:>8,} rows  labels {balance}  {words}")
    embeddings = stats["embeddings"]
    lines.append(f"  vocabulary      {stats['vocabulary_size']:,} tokens (3 reserved)")
    lines.append(
        f"  word vectors    {embeddings['source']}, {embeddings['dimension']}-d, "
        f"{embeddings['pretrained_words']:,} words pretrained ({100 * embeddings['coverage']:.1f}% of the vocabulary)"
    )
    return "\n".join(lines)


def run(config: RunConfig) -> dict[str, Any]:
    """Runs the configured stages in `config.workdir`."""
    os.makedirs(config.workdir, exist_ok=True)
    write_json(os.path.join(config.workdir, "config.json"), config.to_dict())
    stats = prepare(config)
    print(format_statistics(stats), flush=True)
    missing = [stage for stage in config.stage_list() if stage not in AVAILABLE_STAGES]
    if missing:
        logging.warning("Stages not available yet: %s", ", ".join(missing))
        print(f"Stages not available yet: {', '.join(missing)}", flush=True)
    return stats
