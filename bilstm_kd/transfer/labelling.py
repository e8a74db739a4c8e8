"""Teacher labelling of the transfer set: its logits for every example, cached as sharded TFRecords.

The labelled store mirrors the augmented store shard for shard, records in the same order, each record
gaining `teacher_logits`. Shards are labelled one at a time and written atomically, so a killed run resumes
at the first missing shard. The store's fingerprint combines the teacher's identity, the source store's
fingerprint and the labelling settings: a different teacher or different data starts a new store, and a
half-written store with the right fingerprint is completed rather than trusted or thrown away.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import Task
from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.teacher.inference import EncodedTexts, checked_logits, encode_texts, encoded_logits
from bilstm_kd.teacher.lite import LiteTeacher
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.teacher.precision import FLOAT32
from bilstm_kd.transfer import records
from bilstm_kd.transfer.shards import ShardedRecords

# Bumped when the labelled record layout or the way logits are computed changes.
LABELLING_FORMAT = 1


def _read_shard(path: str, is_pair: bool) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The texts (one array per column, Python str) and labels of one source shard, in record order."""
    columns: list[list[bytes]] = [[] for _ in range(2 if is_pair else 1)]
    labels: list[np.ndarray] = []
    parsed = records.parse_records(tf.data.TFRecordDataset(path), is_pair, None).batch(4096)
    for batch in parsed.as_numpy_iterator():
        columns[0].extend(batch["text_a"])
        if is_pair:
            columns[1].extend(batch["text_b"])
        labels.append(batch["label"])
    texts = tuple(np.array([text.decode("utf-8") for text in column], dtype=object) for column in columns)
    return texts, (np.concatenate(labels) if labels else np.zeros([0], np.int64))


def label_transfer_set(
    teacher: BertTeacher,
    source_store: ShardedRecords,
    directory: str | os.PathLike,
    task: Task,
    batch_size: int = 256,
    teacher_fingerprint: str = "",
    verbose: int = 1,
    strategy: tf.distribute.Strategy | None = None,
    jit_compile: bool = False,
    lite: LiteTeacher | None = None,
    check_margin: float = 1.0,
) -> ShardedRecords:
    """Writes the teacher's logits for every transfer-set example, resuming or reusing earlier work.

    Args:
        teacher: the fine-tuned teacher.
        source_store: the complete transfer set written by augmentation (records without logits).
        directory: where the labelled store lives (the run's `transfer/labelled` or similar).
        task: says whether records are sentence pairs and how many logits there are.
        batch_size: examples per teacher forward pass (`--label_batch_size`); batches group examples of
            similar length, so this bounds memory rather than padding.
        teacher_fingerprint: the teacher's identity, e.g. `teacher.saving.saved_teacher_fingerprint(teacher_dir)`.
            It must change whenever the teacher's weights may have changed.
        verbose: 1 prints a progress bar per shard.
        strategy: the run's `tf.distribute` strategy. With several workers, worker i of n labels the missing
            shards whose index is i modulo n and the chief marks the store complete once all are written:
            the same files one process would write. Within a worker, batches are split between its local
            replicas; create the teacher in `distribute.local_strategy(strategy).scope()`.
        jit_compile: run the teacher with XLA (`inference.encoded_logits`).
        lite: a `LiteTeacher` made from `teacher`, which then labels first: `teacher` relabels only the
            examples whose two highest int8 logits are less than `check_margin` apart.

    Returns:
        The complete labelled store; parse it with `records.parse_records(store.dataset(), task.is_pair,
        task.num_classes)`.
    """
    _check_inputs(teacher, source_store, task, teacher_fingerprint)
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    workers, worker = distribute.worker_count(strategy), distribute.worker_index(strategy)
    fingerprint_values = {
        "format": LABELLING_FORMAT,
        "teacher": teacher_fingerprint,
        "source": source_store.fingerprint,
        "task": task.name,
        "num_classes": task.num_classes,
        # Truncation changes the logits of long examples; the batch size only reorders float sums.
        "teacher_max_length": teacher.sequence_length,
    }
    if teacher.precision != FLOAT32:  # 16-bit logits are not float32 ones
        fingerprint_values["precision"] = teacher.precision
    if lite is not None:
        fingerprint_values["lite"] = {"precision": lite.precision, "check_margin": check_margin}
    # The chief opens the store first: opening clears a stale one, which must not happen under a worker's feet.
    store = ShardedRecords(directory, fingerprint_values, source_store.num_shards) if chief else None
    distribute.barrier(strategy)
    store = store or ShardedRecords(directory, fingerprint_values, source_store.num_shards)
    if store.is_complete():
        if verbose:
            print(f"Reusing teacher logits in {store.directory}", flush=True)
        return store
    started = time.time()
    labeller = _Labeller(teacher, batch_size, distribute.local_strategy(strategy), jit_compile, lite, check_margin)
    labelled_examples, word_pieces = _label_shards(
        labeller, source_store, store, task, verbose, mine=lambda index: index % workers == worker
    )
    seconds = time.time() - started
    distribute.barrier(strategy)  # every worker's shards are written
    if chief:
        store.finish(
            {
                "examples": _count_records(store),
                "labelled_in_this_run": labelled_examples,  # by this worker, when there are several
                "seconds_in_this_run": round(seconds, 2),
                "examples_per_second": round(labelled_examples / seconds, 1) if seconds > 0 else None,
                "mean_word_pieces": round(word_pieces / labelled_examples, 2) if labelled_examples else None,
                **({"relabelled_by_teacher_in_this_run": labeller.relabelled} if lite is not None else {}),
            }
        )
    distribute.barrier(strategy)  # the store is complete for everyone
    return store


def _count_records(store: ShardedRecords) -> int:
    return int(tf.data.TFRecordDataset(store.paths()).reduce(np.int64(0), lambda count, _: count + 1))


def _check_inputs(teacher: BertTeacher, source_store: ShardedRecords, task: Task, teacher_fingerprint: str) -> None:
    if not teacher_fingerprint:
        raise ValueError(
            "`teacher_fingerprint` must identify the teacher (e.g. saving.saved_teacher_fingerprint(directory)); "
            f"received teacher_fingerprint={teacher_fingerprint!r}"
        )
    if teacher.num_classes != task.num_classes:
        raise ValueError(f"The teacher has {teacher.num_classes} classes but task {task.name!r} has {task.num_classes}")
    if not source_store.is_complete():
        raise RuntimeError(
            f"The transfer set in {source_store.directory} is incomplete (shards {source_store.missing_shards()} "
            "missing): run the augment stage first"
        )


@dataclasses.dataclass
class _Labeller:
    """Logits of encoded examples: the teacher's, or the `lite` teacher's checked by the teacher."""

    teacher: BertTeacher
    batch_size: int
    local_strategy: tf.distribute.Strategy
    jit_compile: bool
    lite: LiteTeacher | None
    check_margin: float
    relabelled: int = 0

    def __call__(self, encoded: EncodedTexts, progress: keras.utils.Progbar | None) -> np.ndarray:
        options = {"strategy": self.local_strategy, "jit_compile": self.jit_compile}
        if self.lite is None:
            return encoded_logits(self.teacher, encoded, self.batch_size, progress, **options)
        logits, doubtful = checked_logits(
            self.lite, self.teacher, encoded, self.check_margin, self.batch_size, progress, **options
        )
        self.relabelled += len(doubtful)
        return logits


def _label_shards(
    labeller: _Labeller,
    source_store: ShardedRecords,
    store: ShardedRecords,
    task: Task,
    verbose: int,
    mine: Callable[[int], bool],
) -> tuple[int, int]:
    """Labels the missing shards that are `mine`; returns the examples and word pieces labelled."""
    labelled_examples = word_pieces = 0
    todo = [index for index in store.missing_shards() if mine(index)]  # the others are other workers' shards
    started = time.perf_counter()
    for done, index in enumerate(todo):
        if verbose and done:  # the time left, at the rate of the shards so far
            rate = labelled_examples / (time.perf_counter() - started)
            left = (len(todo) - done) * labelled_examples / done / rate
            print(f"Labelling at {rate:,.0f} examples/s: about {left / 60:.1f} min left", flush=True)
        texts, labels = _read_shard(source_store.shard_path(index), task.is_pair)
        encoded = encode_texts(labeller.teacher.preprocessor, *texts)
        progress = None
        if verbose:
            print(f"Labelling shard {index + 1}/{store.num_shards} ({len(labels)} examples)", flush=True)
            progress = keras.utils.Progbar(len(labels), unit_name="example")
        logits = labeller(encoded, progress)
        store.write_shard(
            index,
            (
                records.encode_example([column[row] for column in texts], int(labels[row]), logits[row])
                for row in range(len(labels))
            ),
        )
        labelled_examples += len(labels)
        word_pieces += int(encoded.lengths.sum())
    return labelled_examples, word_pieces
