"""Student training: the input pipeline, `train_student` with a resumable run directory, evaluation.

Input pipeline. Texts are tokenized once, in large batches (`vocab.WordTokenizer`), and kept in memory as
variable-length id vectors. Training batches are then formed by `tf.data.Dataset.bucket_by_sequence_length`:
sentences of similar length share a batch, and each batch is padded only to its own longest sentence.
The students' `MaskedBiLSTM` stops each sentence at its own length, so this padding changes nothing but
the cost. A model batch is `(ids, targets)` for single sentences and `((ids_a, ids_b), targets)` for
pairs, with `targets` a dict of `teacher_logits` (transfer set), `label` and `has_label`.

Run directory written by `train_student`:

    checkpoint.weights.h5   the distiller and optimizer after the last finished epoch (resume point)
    best.weights.h5         the student's weights at the best dev score so far
    training_state.json     finished epochs, best score and epoch, per-epoch logs, whether training ended
    history.json            the per-epoch logs once training has ended
    student.keras           the trained student (best dev weights)
    backup/                 mid-epoch backups (`keras.callbacks.BackupAndRestore`), removed when training ends
    logs/                   TensorBoard logs

Under `--strategy=multi_worker` the chief writes this directory and every other worker keeps the same
files for itself in `workers/<task>_<id>/` below it, so no two processes ever write one file, and a worker
that is restarted resumes from its own checkpoint and backup (the weights are the same on every worker).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd import distribute
from bilstm_kd.config import DistillConfig
from bilstm_kd.distiller import Distiller
from bilstm_kd.files import write_json
from bilstm_kd.optimizers import SparseAdadelta
from bilstm_kd.tasks import Task
from bilstm_kd.vocab import WordTokenizer

CHECKPOINT = "checkpoint.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
STATE = "training_state.json"
HISTORY = "history.json"
STUDENT = "student.keras"
TOKENIZE_BATCH_SIZE = 1024


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


def make_optimizer(distill_config: DistillConfig) -> keras.optimizers.Optimizer:
    """The student's optimizer: AdaDelta (lr 1.0, rho 0.95 in the paper) or Adam.

    AdaDelta's epsilon is 1e-6, PyTorch's default, which the authors' code (castorini/d-bert) ran with;
    Keras' default of 1e-7 makes the first steps about 3x smaller. AdaDelta is `SparseAdadelta`: the same
    weights as a dense update, but each step writes only the word vectors its batch uses.
    """
    if distill_config.optimizer == "adadelta":
        return SparseAdadelta(learning_rate=distill_config.learning_rate, rho=distill_config.rho, epsilon=1e-6)
    if distill_config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=distill_config.learning_rate)
    raise ValueError(f"--optimizer={distill_config.optimizer!r} is not allowed: must be one of adadelta, adam")


# --------------------------------------------------------------------------------------------- input pipeline


def _ragged_ids(tokenizer: WordTokenizer, texts: tf.Tensor) -> tf.RaggedTensor:
    # Real words have ids >= 1 ([UNK] is 1), so stripping trailing zeros recovers each sentence exactly.
    return tf.RaggedTensor.from_tensor(tokenizer(texts), padding=0)


def _as_dense(value):
    # Unbatching ragged ids yields rank-0 ragged specs, which `padded_batch` refuses; inside `map` they
    # arrive as plain tensors, and `tf.identity` turns the spec into a `TensorSpec`.
    return tf.identity(value) if isinstance(value, tf.Tensor) else value.flat_values


def _densify(inputs, targets):
    return tf.nest.map_structure(_as_dense, inputs), targets


def tokenize_records(records: tf.data.Dataset, tokenizer: WordTokenizer, is_pair: bool) -> tf.data.Dataset:
    """Transfer-set dicts (`records.parse_records` output) -> unbatched `(ids, targets)` examples.

    Args:
        records: dicts with `text_a`, [`text_b`,] `label`, `has_label` and optionally `teacher_logits`.
        tokenizer: the student's tokenizer (its `max_length` truncates).
        is_pair: whether the records have `text_b`.

    Returns:
        A dataset of `(ids, targets)` (pairs: `((ids_a, ids_b), targets)`), ids a 1-D int32 vector per
        sentence, targets a dict with `label`, `has_label` and, when present, `teacher_logits`.
    """

    def tokenize_batch(batch: dict[str, tf.Tensor]):
        targets = {"label": tf.cast(batch["label"], tf.int32), "has_label": tf.cast(batch["has_label"], tf.int32)}
        if "teacher_logits" in batch:
            targets["teacher_logits"] = batch["teacher_logits"]
        if is_pair:
            if "text_b" not in batch:
                raise ValueError(f"A sentence-pair task needs 'text_b' in its records; received keys {sorted(batch)}")
            inputs = (_ragged_ids(tokenizer, batch["text_a"]), _ragged_ids(tokenizer, batch["text_b"]))
        else:
            inputs = _ragged_ids(tokenizer, batch["text_a"])
        return inputs, targets

    return (
        records.batch(TOKENIZE_BATCH_SIZE)
        .map(tokenize_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(_densify)
    )


def tokenize_examples(examples: tf.data.Dataset, tokenizer: WordTokenizer, is_pair: bool) -> tf.data.Dataset:
    """Gold-labelled `(text, label)` / `((text_a, text_b), label)` elements (`data.Examples.to_dataset()`)
    -> unbatched `(ids, {"label", "has_label"})` examples, as `tokenize_records` gives."""

    def tokenize_batch(texts, labels):
        labels = tf.cast(labels, tf.int32)
        targets = {"label": labels, "has_label": tf.cast(labels >= 0, tf.int32)}
        if is_pair:
            return (_ragged_ids(tokenizer, texts[0]), _ragged_ids(tokenizer, texts[1])), targets
        return _ragged_ids(tokenizer, texts), targets

    return (
        examples.batch(TOKENIZE_BATCH_SIZE)
        .map(tokenize_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(_densify)
    )


def _sequence_length(inputs, targets) -> tf.Tensor:
    if isinstance(inputs, tuple):
        return tf.maximum(tf.shape(inputs[0])[0], tf.shape(inputs[1])[0])
    return tf.shape(inputs)[0]


def batch_for_student(
    examples: tf.data.Dataset,
    batch_size: int,
    max_length: int,
    shuffle: bool = False,
    seed: int = 0,
    bucket_width: int = 5,
    shuffle_buffer: int = 100_000,
    cache: bool = True,
) -> tf.data.Dataset:
    """Unbatched `(ids, targets)` examples -> padded model batches, bucketed by length.

    Args:
        examples: output of `tokenize_records` or `tokenize_examples`.
        batch_size: examples per batch (paper: 50 single sentence, 256 pairs).
        max_length: the tokenizer's maximum length (sets the bucket boundaries).
        shuffle: shuffle examples (reshuffled every epoch) and the order of the batches.
        seed: shuffle seed.
        bucket_width: sentence lengths per bucket; 0 disables bucketing (plain batches in input order).
        shuffle_buffer: examples in the shuffle buffer.
        cache: keep the tokenized examples in memory after the first pass, so later epochs skip
            tokenization.

    Returns:
        A dataset of `(ids, targets)` batches, `ids` `[batch, longest]` int32 (pairs: a tuple).
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, received batch_size={batch_size}")
    if bucket_width < 0:
        raise ValueError(f"`bucket_width` must be 0 (no bucketing) or more, received bucket_width={bucket_width}")
    if cache:
        examples = examples.cache()
    if shuffle:
        examples = examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if bucket_width == 0 or max_length <= bucket_width:
        batches = examples.padded_batch(batch_size)
    else:
        boundaries = list(range(bucket_width + 1, max_length + 1, bucket_width))
        batches = examples.bucket_by_sequence_length(
            _sequence_length, bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1)
        )
        if shuffle:
            # Buckets fill at different rates; mixing finished batches keeps lengths from arriving in runs.
            batches = batches.shuffle(64, seed=seed + 1, reshuffle_each_iteration=True)
    return batches.prefetch(tf.data.AUTOTUNE)


def transfer_batches(
    records: tf.data.Dataset,
    tokenizer: WordTokenizer,
    is_pair: bool,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """Transfer-set dicts (`records.parse_records`) -> shuffled, length-bucketed training batches."""
    examples = tokenize_records(records, tokenizer, is_pair)
    return batch_for_student(examples, batch_size, tokenizer.max_length, shuffle=shuffle, seed=seed, cache=cache)


def example_batches(
    examples: tf.data.Dataset,
    tokenizer: WordTokenizer,
    is_pair: bool,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    bucket: bool = True,
    cache: bool = True,
) -> tf.data.Dataset:
    """Gold-labelled text examples (`data.Examples.to_dataset()`) -> model batches.

    Use it for dev sets (`shuffle=False`), for the gold-label baseline (`shuffle=True`) and, with
    `bucket=False`, for predictions that must stay in input order.
    """
    tokenized = tokenize_examples(examples, tokenizer, is_pair)
    return batch_for_student(
        tokenized,
        batch_size,
        tokenizer.max_length,
        shuffle=shuffle,
        seed=seed,
        bucket_width=5 if bucket else 0,
        cache=cache,
    )


# ------------------------------------------------------------------------------------------------- training


def _save_weights_atomically(model: keras.Model, path: str) -> None:
    # A checkpoint that exists is whole: write beside it, then rename over it.
    temporary = path.replace(".weights.h5", ".tmp.weights.h5")
    model.save_weights(temporary, overwrite=True)
    os.replace(temporary, path)


def _build(distiller: Distiller) -> None:
    """Creates the distiller's and optimizer's variables, so that saved weights can be loaded into them."""
    ids = np.ones((1, 1), "int32")
    with distiller.distribute_strategy.scope():
        distiller(tuple(ids for _ in distiller.student.inputs) if len(distiller.student.inputs) > 1 else ids)
        distiller.optimizer.build(distiller.trainable_variables)


class _RunDirectoryMonitor(keras.callbacks.Callback):
    """Checkpoints each finished epoch, keeps the best student, stops early, and stops on a NaN loss.

    All of its state lives in `training_state.json`, so a resumed run keeps its best score and patience.
    """

    def __init__(self, directory: str, state: dict[str, Any], monitor: str, mode: str, patience: int):
        super().__init__()
        self.directory = directory
        self.state = state
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.diverged_at: tuple[int, int] | None = None
        self._epoch = 0

    def _improved(self, value: float) -> bool:
        best = self.state["best_value"]
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(np.asarray(loss))):
            self.diverged_at = (self._epoch, batch)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged_at is not None:
            return  # never checkpoint weights that produced a NaN loss
        logs = {name: float(np.asarray(value)) for name, value in (logs or {}).items()}
        if self.monitor not in logs:
            raise ValueError(
                f"Early stopping monitors {self.monitor!r}, which training did not log; logged: {sorted(logs)}"
            )
        for name, value in logs.items():
            self.state["history"].setdefault(name, []).append(value)
        value = logs[self.monitor]
        if math.isfinite(value) and self._improved(value):
            self.state["best_value"], self.state["best_epoch"] = value, epoch + 1
            _save_weights_atomically(self.model.student, os.path.join(self.directory, BEST_WEIGHTS))
        _save_weights_atomically(self.model, os.path.join(self.directory, CHECKPOINT))
        self.state["epochs_completed"] = epoch + 1
        best_epoch = self.state["best_epoch"]
        if self.patience and best_epoch is not None and epoch + 1 - best_epoch >= self.patience:
            self.state["stopped_early"] = True
            self.model.stop_training = True
        write_json(os.path.join(self.directory, STATE), self.state)


class _Backup(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` that also backs up at every epoch end and knows the epoch after a resume.

    Keras counts epochs from the start of this `fit` call, so a mid-epoch backup of a run resumed at
    `initial_epoch > 0` would record the wrong epoch; here each backup records the epoch it was taken in.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        self._save_model()


def _drop_stale_backup(backup_directory: str, epochs_completed: int) -> None:
    """Removes a backup that does not continue the checkpointed epoch (a kill between the two writes)."""
    metadata_path = os.path.join(backup_directory, "training_metadata.json")
    try:
        with open(metadata_path, encoding="utf-8") as file:
            backup_epoch = json.load(file)["epoch"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        backup_epoch = None
    if backup_epoch != epochs_completed and os.path.isdir(backup_directory):
        shutil.rmtree(backup_directory)


def _new_state(monitor: str, mode: str) -> dict[str, Any]:
    return {
        "monitor": monitor,
        "mode": mode,
        "epochs_completed": 0,
        "best_value": None,
        "best_epoch": None,
        "stopped_early": False,
        "finished": False,
        "history": {},
    }


def train_student(
    distiller: Distiller,
    train_dataset: tf.data.Dataset,
    dev_dataset: tf.data.Dataset | None,
    distill_config: DistillConfig,
    directory: str | os.PathLike,
    verbose: str | int = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    backup_steps: int = 0,
) -> dict[str, Any]:
    """Trains `distiller` with early stopping on dev, checkpointing into `directory` and resuming from it.

    The distiller is compiled with `make_optimizer(distill_config)` unless it is compiled already. Each
    finished epoch is checkpointed (weights and optimizer state); a run killed mid-way continues from the
    last finished epoch when called again with the same directory, and a finished run only reloads its
    best weights, unless `distill_config.epochs` has grown since and it did not stop early: it then trains
    on to the new count. Training stops after `distill_config.patience` epochs without a better dev score (the
    distiller's first task metric, e.g. `val_accuracy`; without a dev set, the training loss). At the end
    the student holds its best weights and is saved as `student.keras`.

    Args:
        distiller: the `Distiller` around the student (alpha=1 for the gold-label baseline).
        train_dataset: batches of `(inputs, targets)` (`transfer_batches` / `example_batches`).
        dev_dataset: gold-labelled batches for early stopping, or None.
        distill_config: epochs, patience and optimizer settings.
        directory: the run directory (see the module docstring); created if missing.
        verbose: Keras progress bar setting.
        callbacks: more Keras callbacks (TensorBoard logs are always written to `logs/`).
        backup_steps: also back up every this many steps, so that a killed run (or a restarted worker)
            resumes mid-epoch: from the backed-up weights, at the start of the interrupted epoch. 0 backs up
            at epoch ends only.

    Returns:
        `{"monitor", "best_value", "best_epoch", "epochs_completed", "stopped_early", "history"}`, where
        `history` maps each logged metric to its per-epoch values (over resumed runs too).

    Raises:
        TrainingDivergedError: the loss became NaN or infinite; the last good checkpoint stays in
            `directory` and a rerun resumes from it.
    """
    directory = os.fspath(directory)
    strategy = distiller.distribute_strategy
    if not distribute.is_chief(strategy):
        directory = os.path.join(directory, "workers", distribute.worker_name(strategy))
    os.makedirs(directory, exist_ok=True)
    if dev_dataset is not None:
        monitor, mode = f"val_{distiller.task_metrics[0]}", "max"
    else:
        monitor, mode = "loss", "min"
    state_path = os.path.join(directory, STATE)
    state = _new_state(monitor, mode)
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as file:
            state = json.load(file)
        if state.get("monitor") != monitor:
            raise ValueError(
                f"{state_path} comes from a run that monitored {state.get('monitor')!r}, this run monitors "
                f"{monitor!r}: use a fresh directory or delete {directory}"
            )

    if not distiller.compiled:
        with distiller.distribute_strategy.scope():
            distiller.compile(optimizer=make_optimizer(distill_config))

    checkpoint_path = os.path.join(directory, CHECKPOINT)
    _build(distiller)
    if state["epochs_completed"] and os.path.exists(checkpoint_path):
        distiller.load_weights(checkpoint_path)

    monitor_callback = _RunDirectoryMonitor(directory, state, monitor, mode, distill_config.patience)
    if not state["stopped_early"] and state["epochs_completed"] < distill_config.epochs:
        backup_directory = os.path.join(directory, "backup")
        _drop_stale_backup(backup_directory, state["epochs_completed"])
        all_callbacks = [
            monitor_callback,  # first: an epoch is checkpointed before its end-of-epoch backup
            _Backup(backup_directory, save_freq=backup_steps or "epoch"),
            keras.callbacks.TensorBoard(os.path.join(directory, "logs"), write_graph=False),
            *callbacks,
        ]
        with warnings.catch_warnings():
            # Length-bucketed batches have no known count: Keras learns it by running out of data at the
            # end of the first epoch (and of any shuffled epoch with a batch fewer), and warns each time.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            distiller.fit(
                train_dataset,
                validation_data=dev_dataset,
                epochs=distill_config.epochs,
                initial_epoch=state["epochs_completed"],
                callbacks=all_callbacks,
                verbose=verbose,
                shuffle=False,  # the input pipeline shuffles
            )
        if monitor_callback.diverged_at is not None:
            epoch, batch = monitor_callback.diverged_at
            if os.path.exists(checkpoint_path) and state["epochs_completed"]:
                distiller.load_weights(checkpoint_path)
                kept = f"the last good checkpoint, {checkpoint_path} (after epoch {state['epochs_completed']}), is kept"
            else:
                kept = "no epoch had finished, so there is no checkpoint to fall back on"
            raise TrainingDivergedError(
                f"The student's training loss became NaN/infinite at epoch {epoch + 1}, batch {batch + 1}; "
                f"training stopped and {kept}. A rerun resumes from the checkpoint; consider a lower "
                f"--learning_rate (now {distill_config.learning_rate}) or checking the teacher logits for NaN."
            )

    state["finished"] = True
    write_json(state_path, state)
    best_path = os.path.join(directory, BEST_WEIGHTS)
    if os.path.exists(best_path):
        distiller.student.load_weights(best_path)
    distiller.student.save(os.path.join(directory, STUDENT))
    summary = {key: state[key] for key in ("monitor", "best_value", "best_epoch", "epochs_completed", "stopped_early")}
    summary["history"] = state["history"]
    write_json(os.path.join(directory, HISTORY), summary)
    return summary


# ----------------------------------------------------------------------------------------------- evaluation


def _split_element(student: keras.Model, element) -> tuple[Any, Any]:
    """`(inputs, targets or None)` from a dataset element that is `inputs` or `(inputs, targets)`."""
    if not isinstance(element, tuple):
        return element, None
    if len(student.inputs) == 2:  # a pair student's inputs are a tuple themselves
        if isinstance(element[0], tuple):
            return element[0], (element[1] if len(element) > 1 else None)
        return element, None
    return element[0], (element[1] if len(element) > 1 else None)


def _logits_function(student: keras.Model):
    return tf.function(lambda inputs: student(inputs, training=False), reduce_retracing=True)


def predict_logits(student: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """Student logits for every example of `dataset`, in its order.

    Args:
        student: a student model.
        dataset: batches of `inputs` or `(inputs, targets)`; pair inputs are `(ids_a, ids_b)` tuples.

    Returns:
        float32 `[examples, num_classes]`.
    """
    logits_of = _logits_function(student)
    outputs = [logits_of(_split_element(student, element)[0]).numpy() for element in dataset]
    if not outputs:
        return np.zeros((0, student.num_classes), "float32")
    return np.concatenate(outputs).astype("float32")


def evaluate_student(student: keras.Model, dataset: tf.data.Dataset, task: Task) -> dict[str, float]:
    """Task metrics (`task.evaluate`) of the student on gold-labelled batches.

    Args:
        student: a student model.
        dataset: batches of `(inputs, targets)`, targets a dict with `label` (and optionally `has_label`,
            `teacher_logits`) or a tensor of labels. Examples without a gold label are not scored.
        task: the task, for its metrics.

    Returns:
        The task's metrics, `examples` (how many were scored) and, when the batches carry teacher logits,
        `teacher_agreement` (fraction of all examples where student and teacher argmax agree).
    """
    logits_of = _logits_function(student)
    labels, predictions, agreements = [], [], []
    for element in dataset:
        inputs, targets = _split_element(student, element)
        if targets is None:
            raise ValueError("evaluate_student needs (inputs, targets) batches with gold labels")
        predicted = np.argmax(logits_of(inputs).numpy(), axis=-1)
        if isinstance(targets, dict):
            label = np.asarray(targets["label"]).reshape(-1)
            has_label = np.asarray(targets.get("has_label", label >= 0)).reshape(-1).astype(bool)
            if "teacher_logits" in targets:
                agreements.append(predicted == np.argmax(np.asarray(targets["teacher_logits"]), axis=-1))
        else:
            label = np.asarray(targets).reshape(-1)
            has_label = label >= 0
        labels.append(label[has_label])
        predictions.append(predicted[has_label])
    labels_array = np.concatenate(labels) if labels else np.zeros(0, "int64")
    predictions_array = np.concatenate(predictions) if predictions else np.zeros(0, "int64")
    results = task.evaluate(labels_array, predictions_array)
    results["examples"] = int(labels_array.size)
    if agreements:
        results["teacher_agreement"] = float(np.mean(np.concatenate(agreements)))
    return results
