"""Writes the transfer set: the original training examples plus their deduplicated augmentations.

The store is a `ShardedRecords` directory (records in the `records.py` format). Shard k holds the
training examples [k * N / S, (k + 1) * N / S): first the originals with their gold labels, then the
augmentations round by round (round 0 of every example of the shard, then round 1, ...), so the copies
of one sentence are spread through the shard rather than side by side for the student's shuffle buffer.

Duplicates are dropped globally, as in the authors' code: an augmented example is written only if its
text differs from every original and from every augmented example written before it (in shard, round,
example order). Global deduplication keeps short n-grams such as "[MASK]" or "the", produced by thousands
of sentences, from swamping the transfer set. Because the augmentation of an example depends only on
(seed, example index, round), the set of distinct texts does not depend on the number of shards either.

A killed run resumes shard by shard: each shard is written atomically after its statistics file; on
resume, finished shards are read back (not recomputed) to rebuild the set of texts already written.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from bilstm_kd import cache
from bilstm_kd.data.tasks import Task, get_task
from bilstm_kd.text import pos, vocab
from bilstm_kd.transfer import augment, records
from bilstm_kd.transfer.augment import Augmentation
from bilstm_kd.transfer.shards import ShardedRecords

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_STATISTICS_KEYS = ("originals", "generated", "augmented", "dropped_unchanged", "dropped_duplicates", "seconds")


class ExamplesLike(Protocol):
    """What `build_transfer_set` reads from the training split (`data.Examples` has this shape)."""

    texts: tuple[np.ndarray, ...]
    labels: np.ndarray


def transfer_fingerprint_values(
    columns: Sequence[Sequence[str]],
    labels: np.ndarray,
    task: Task,
    config: Augmentation,
    seed: int,
    tokenizer: str = "glue",
) -> dict[str, Any]:
    """Everything the transfer set depends on; settings that cannot change it are left out."""
    values: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "task": task.name,
        "data": cache.texts_fingerprint(columns, labels.tolist()),
        "examples": len(labels),
        "tokenization": vocab.tokenization_rules(tokenizer),
        "n_iter": config.n_iter,
    }
    if config.n_iter > 0:
        values.update(seed=seed, p_mask=config.p_mask, p_pos=config.p_pos, p_ng=config.p_ng, max_ngram=config.max_ngram)
        if config.p_pos > 0:
            values["tagger"] = pos.tagger_identity(config.pos_model)
    return values


def _check_inputs(train: ExamplesLike, task: Task) -> tuple[list[list[str]], np.ndarray]:
    columns = [[str(text) for text in np.asarray(column).tolist()] for column in train.texts]
    labels = np.asarray(train.labels)
    expected = 2 if task.is_pair else 1
    if len(columns) != expected:
        raise ValueError(f"Task {task.name!r} has {expected} text column(s); the training examples have {len(columns)}")
    if any(len(column) != len(labels) for column in columns):
        raise ValueError(
            f"Every text column needs one text per label: {len(labels)} labels, column lengths "
            f"{[len(column) for column in columns]}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= task.num_classes):
        raise ValueError(
            f"Training labels must be class ids in [0, {task.num_classes}) for task {task.name!r}; "
            f"received labels from {labels.min()} to {labels.max()}"
        )
    return columns, labels.astype(np.int64)


def _statistics_path(store: ShardedRecords, index: int) -> str:
    return store.shard_path(index) + ".stats.json"


def _read_statistics(path: str) -> dict[str, Any] | None:
    statistics = cache.read_json(path)
    return statistics if isinstance(statistics, dict) and all(key in statistics for key in _STATISTICS_KEYS) else None


def _dedup_key(texts: Sequence[bytes]) -> bytes:
    # Tokens never contain whitespace, so a tab cannot be confused with text.
    return b"\t".join(texts)


def _written_augmented_keys(path: str, is_pair: bool) -> list[bytes]:
    """Dedup keys of the augmented examples of a finished shard."""
    parsed = records.parse_records(tf.data.TFRecordDataset(path), is_pair).filter(lambda r: r["has_label"] == 0)
    names = ("text_a", "text_b") if is_pair else ("text_a",)
    keys: list[bytes] = []
    for batch in parsed.batch(8192).as_numpy_iterator():
        keys.extend(_dedup_key(texts) for texts in zip(*(batch[name] for name in names)))
    return keys


class _PreparedSplit:
    """The training split prepared for augmentation: ragged tokens (and tag ids) of every column."""

    def __init__(
        self,
        columns: list[list[str]],
        task: Task,
        config: Augmentation,
        seed: int,
        pos_cache_dir: str | None,
        tokenizer: str = "glue",
        verbose: int = 0,
    ):
        self.config = config
        self.seed = seed
        self.is_pair = task.is_pair
        self.tokens = [
            vocab.tokenize(tf.constant(column, dtype=tf.string, shape=[len(column)]), tokenizer) for column in columns
        ]
        normalized = [augment.join_tokens(tokens).numpy().tolist() for tokens in self.tokens]
        self.original_keys = [_dedup_key(texts) for texts in zip(*normalized)]
        self.table: augment.ReplacementTable | None = None
        self.tag_ids: list[tf.RaggedTensor | None] = [None] * len(columns)
        if config.n_iter > 0 and config.p_pos > 0:
            started = time.perf_counter()
            tags = [
                pos.pos_tags(column, config.pos_model, pos_cache_dir, verbose=verbose, tokenizer=tokenizer)
                for column in columns
            ]
            words = [[[word.decode("utf-8") for word in row] for row in tokens.to_list()] for tokens in self.tokens]
            self.table = augment.ReplacementTable.from_tagged(
                [row for column in words for row in column], [row for column in tags for row in column]
            )
            self.tag_ids = [self.table.tag_ids(column_tags) for column_tags in tags]
            logger.info("POS tags and replacement table ready in %.1f s", time.perf_counter() - started)

    def dataset(self, start: int, end: int, batch_size: int) -> tf.data.Dataset:
        """Batches of (example indices, augmented texts per column) for examples [start, end), round-major."""
        size = end - start
        tokens = [column[start:end] for column in self.tokens]
        tag_ids = [None if column is None else column[start:end] for column in self.tag_ids]

        def augment_indices(flat_index: tf.Tensor) -> tuple[tf.Tensor, tuple[tf.Tensor, ...]]:
            local = flat_index % size
            rounds = flat_index // size
            examples = start + local
            batch_tokens = [tf.gather(column, local) for column in tokens]
            batch_tags = [None if column is None else tf.gather(column, local) for column in tag_ids]
            if self.is_pair:
                outputs = augment.augment_pair_batch(
                    tuple(batch_tokens), tuple(batch_tags), examples, rounds, self.config, self.seed, self.table
                )
            else:
                outputs = (
                    augment.augment_batch(
                        batch_tokens[0], batch_tags[0], examples, rounds, self.config, self.seed, self.table
                    ),
                )
            return examples, tuple(augment.join_tokens(output) for output in outputs)

        return (
            tf.data.Dataset.range(self.config.n_iter * size)
            .batch(batch_size)
            .map(augment_indices, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )


def _generate_shard(
    prepared: _PreparedSplit,
    columns: list[list[str]],
    labels: np.ndarray,
    start: int,
    end: int,
    seen: set[bytes],
    batch_size: int,
) -> tuple[list[bytes], dict[str, Any]]:
    """The serialized records of one shard and its statistics; adds the written texts to `seen`."""
    started = time.perf_counter()
    shard_records = [
        records.encode_example([column[index] for column in columns], int(labels[index])) for index in range(start, end)
    ]
    generated = unchanged = duplicates = 0
    if prepared.config.n_iter > 0 and end > start:
        for examples, texts in prepared.dataset(start, end, batch_size).as_numpy_iterator():
            generated += len(examples)
            for example, example_texts in zip(examples.tolist(), zip(*texts)):
                key = _dedup_key(example_texts)
                if key == prepared.original_keys[example]:
                    unchanged += 1
                elif key in seen:
                    duplicates += 1
                else:
                    seen.add(key)
                    shard_records.append(records.encode_example(example_texts, records.NO_LABEL))
    statistics = {
        "originals": end - start,
        "generated": generated,
        "augmented": len(shard_records) - (end - start),
        "dropped_unchanged": unchanged,
        "dropped_duplicates": duplicates,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return shard_records, statistics


def build_transfer_set(
    train: ExamplesLike,
    task: Task | str,
    augmentation: Augmentation,
    seed: int,
    directory: str | os.PathLike,
    num_shards: int = 8,
    pos_cache_dir: str | os.PathLike | None = None,
    batch_size: int = 4096,
    tokenizer: str = "glue",
    verbose: int = 0,
) -> ShardedRecords:
    """Builds (or resumes, or reuses) the transfer set of a training split.

    Writes every original example with its gold label, then `augmentation.n_iter` augmentation rounds
    per example (masking, POS-guided replacement, n-gram sampling; pairs cycle through sentence 1, sentence
    2, both), dropping augmentations equal to their original and duplicates of anything already written.
    Augmented examples carry `label = -1` (`has_label = 0`). With `n_iter = 0` the store holds the originals
    only and no tagging happens; with `p_pos = 0` no tagging happens either.

    Args:
        train: the training split: `texts` (one array of strings per text column) and `labels` (class ids).
        task: the task (or its name); its number of text columns must match `train.texts`.
        augmentation: the augmentation settings.
        seed: the run seed; the same seed gives the same transfer set.
        directory: the store's directory (e.g. `<workdir>/transfer/augmented`).
        num_shards: the number of TFRecord shards.
        pos_cache_dir: where POS tags are cached (e.g. `<workdir>/transfer/pos`); None: no cache.
        batch_size: examples per augmentation batch in the `tf.data` pipeline.
        tokenizer: the student's tokenizer (`text.vocab.TOKENIZERS`): augmentation works on its tokens.
        verbose: 1 shows a progress bar while tagging.

    Returns:
        The complete store. `store.manifest["statistics"]` holds `originals`, `augmented` (written),
        `examples` (their sum), `generated`, `dropped_unchanged`, `dropped_duplicates`, `dropped`
        (the two together) and `seconds` (time spent generating and writing shards, summed over resumes).

    Raises:
        pos.TaggerUnavailableError: `p_pos > 0` and no spaCy tagger `augmentation.pos_model` is installed.
        ValueError: the texts do not match the task or the labels are not class ids.

    Example:
    >>> train = types.SimpleNamespace(texts=(np.array(["a good film", "bad"]),), labels=np.array([1, 0]))
    >>> store = build_transfer_set(train, "sst2", Augmentation(n_iter=2, p_pos=0.0), 0, "/tmp/transfer")
    >>> store.manifest["statistics"]["originals"]
    2
    """
    task = get_task(task) if isinstance(task, str) else task
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, received batch_size={batch_size}")
    columns, labels = _check_inputs(train, task)
    store = ShardedRecords(
        directory,
        transfer_fingerprint_values(columns, labels, task, augmentation, seed, tokenizer),
        num_shards,
    )
    if store.is_complete():
        logger.info("Transfer set in %s is complete; reusing it", store.directory)
        return store

    pos_cache = None if pos_cache_dir is None else os.fspath(pos_cache_dir)
    prepared = _PreparedSplit(columns, task, augmentation, seed, pos_cache, tokenizer, verbose)
    seen = set(prepared.original_keys)
    num_examples, num_shards = len(labels), store.num_shards
    totals = dict.fromkeys(_STATISTICS_KEYS, 0)
    for index in range(num_shards):
        start, end = num_examples * index // num_shards, num_examples * (index + 1) // num_shards
        statistics_path = _statistics_path(store, index)
        statistics = _read_statistics(statistics_path)
        if statistics is not None and os.path.exists(store.shard_path(index)):
            seen.update(_written_augmented_keys(store.shard_path(index), task.is_pair))
            logger.info("Shard %d/%d already written", index + 1, num_shards)
        else:
            shard_records, statistics = _generate_shard(prepared, columns, labels, start, end, seen, batch_size)
            cache.write_json(statistics_path, statistics)  # before the shard: a shard never lacks statistics
            store.write_shard(index, shard_records)
            logger.info("Shard %d/%d: %s", index + 1, num_shards, statistics)
        for key in _STATISTICS_KEYS:
            totals[key] += statistics[key]
    totals["seconds"] = round(totals["seconds"], 3)
    totals["examples"] = totals["originals"] + totals["augmented"]
    totals["dropped"] = totals["dropped_unchanged"] + totals["dropped_duplicates"]
    store.finish(totals)
    return store
