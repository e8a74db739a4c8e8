"""Statistics of a split: rows, label balance, sentence lengths and words outside the student's vocabulary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from bilstm_kd.data.readers import Examples
from bilstm_kd.data.tasks import Task
from bilstm_kd.text.vocab import lookup_table, tokenize


def statistics(
    examples: Examples, task: Task, vocabulary: Iterable[str] | None = None, tokenizer: str = "glue"
) -> dict:
    """Row count, label balance and sentence lengths (in the `tokenizer`'s words) of a split; with a
    `vocabulary`, also the share of words outside it and of sentences holding such a word (the student sees
    `[UNK]`)."""
    counts = np.bincount(examples.labels, minlength=task.num_classes)
    stats = {
        "rows": len(examples),
        "labels": {name: int(count) for name, count in zip(task.label_names, counts)},
    }
    known = None
    if vocabulary is not None:
        known = {spelling.encode("utf-8") for spelling, _ in lookup_table(list(vocabulary), tokenizer)}
    for name, column in zip(("text_a", "text_b"), examples.texts):
        tokens = tokenize(tf.constant(list(column), dtype=tf.string), tokenizer)
        lengths = tokens.row_lengths().numpy()
        stats[f"{name}_words"] = {
            "mean": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "max": int(lengths.max()) if len(lengths) else 0,
            "p95": int(np.percentile(lengths, 95)) if len(lengths) else 0,
            "p99": int(np.ceil(np.percentile(lengths, 99))) if len(lengths) else 0,
        }
        if known is not None and len(lengths):
            unknown = np.array([token not in known for token in tokens.flat_values.numpy()], dtype=bool)
            per_row = np.bincount(tokens.value_rowids().numpy(), weights=unknown, minlength=len(lengths))
            stats[f"{name}_words"]["unknown"] = round(float(unknown.mean()) if len(unknown) else 0.0, 4)
            stats[f"{name}_words"]["rows_with_unknown"] = round(float((per_row > 0).mean()), 4)
    return stats


def format_statistics(stats: dict[str, Any]) -> str:
    lines = [f"Task {stats['task']} ({stats['source']})"]
    for split, values in stats["splits"].items():
        balance = ", ".join(f"{label}: {count}" for label, count in values["labels"].items())
        words = "  ".join(
            f"{column} words mean {values[column + '_words']['mean']} max {values[column + '_words']['max']}"
            + _unknown_words(values[column + "_words"])
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


def _unknown_words(words: dict[str, Any]) -> str:
    if "unknown" not in words:
        return ""
    return f" ({100 * words['unknown']:.1f}% unknown, in {100 * words['rows_with_unknown']:.1f}% of rows)"
