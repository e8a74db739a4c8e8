"""Student training: `train_student` with a resumable run directory.

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

import math
import os
import shutil
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd import cache
from bilstm_kd.distill import OPTIMIZERS
from bilstm_kd.distill.callbacks import SelectBestOnDev
from bilstm_kd.distill.distiller import Distiller
from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.student.optimizers import SparseAdadelta

CHECKPOINT = "checkpoint.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
STATE = "training_state.json"
HISTORY = "history.json"
STUDENT = "student.keras"


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


def make_optimizer(name: str = "adadelta", learning_rate: float = 1.0, rho: float = 0.95) -> keras.optimizers.Optimizer:
    """The student's optimizer: AdaDelta (lr 1.0, rho 0.95 in the paper) or Adam (`rho` unused).

    AdaDelta's epsilon is 1e-6, PyTorch's default, which the authors' code (castorini/d-bert) ran with;
    Keras' default of 1e-7 makes the first steps about 3x smaller. AdaDelta is `SparseAdadelta`: the same
    weights as a dense update, but each step writes only the word vectors its batch uses.
    """
    if name == "adadelta":
        return SparseAdadelta(learning_rate=learning_rate, rho=rho, epsilon=1e-6)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")


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


class _RunDirectoryMonitor(SelectBestOnDev):
    """Checkpoints each finished epoch, keeps the best student, stops early, and stops on a NaN loss.

    All of its state lives in `training_state.json`, so a resumed run keeps its best score and patience.
    """

    def __init__(self, directory: str, state: dict[str, Any], patience: int):
        super().__init__(state["mode"], state["best_value"], state["best_epoch"])
        self.directory = directory
        self.state = state
        self.monitor = state["monitor"]
        self.patience = patience
        self.diverged_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(np.asarray(loss))):
            self.diverged_at = (self._epoch, batch)
            self.model.stop_training = True

    def score(self, epoch: int, logs: dict[str, Any]) -> float | None:
        value = logs[self.monitor]
        return value if math.isfinite(value) else None

    def keep(self, epoch: int) -> None:
        _save_weights_atomically(self.model.student, os.path.join(self.directory, BEST_WEIGHTS))

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
        self.select(epoch, logs)
        self.state["best_value"], self.state["best_epoch"] = self.best_value, self.best_epoch
        _save_weights_atomically(self.model, os.path.join(self.directory, CHECKPOINT))
        self.state["epochs_completed"] = epoch + 1
        if _out_of_patience(self.state, self.patience):
            self.state["stopped_early"] = True
            self.model.stop_training = True
        cache.write_json(os.path.join(self.directory, STATE), self.state)


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
    metadata = cache.read_json(os.path.join(backup_directory, "training_metadata.json")) or {}
    backup_epoch = metadata.get("epoch")
    if backup_epoch != epochs_completed and os.path.isdir(backup_directory):
        shutil.rmtree(backup_directory)


def _read_state(path: str, monitor: str, mode: str) -> dict[str, Any]:
    """The training state of an earlier run in this directory, or a new one; it must monitor the same score."""
    state = cache.read_json(path) or _new_state(monitor, mode)
    if state.get("monitor") != monitor:
        raise ValueError(
            f"{path} comes from a run that monitored {state.get('monitor')!r}, this run monitors "
            f"{monitor!r}: use a fresh directory or delete {os.path.dirname(path)}"
        )
    return state


def _out_of_patience(state: dict[str, Any], patience: int) -> bool:
    """Whether the last `patience` finished epochs of `state` brought no better score (patience 0: never)."""
    best_epoch = state["best_epoch"]
    return bool(patience) and best_epoch is not None and state["epochs_completed"] - best_epoch >= patience


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
    directory: str | os.PathLike,
    epochs: int,
    patience: int = 0,
    verbose: str | int = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    backup_steps: int = 0,
) -> dict[str, Any]:
    """Trains `distiller` with early stopping on dev, checkpointing into `directory` and resuming from it.

    The distiller is compiled with `make_optimizer()` (the paper's AdaDelta) unless it is compiled already. Each
    finished epoch is checkpointed (weights and optimizer state); a run killed mid-way continues from the
    last finished epoch when called again with the same directory, and a finished run only reloads its
    best weights, unless `epochs` has grown since and it is not out of this call's `patience`: it then
    trains on to the new count (a run that stopped early goes on when given a larger patience). Training
    stops after `patience` epochs without a better dev score (the distiller's first task metric, e.g.
    `val_accuracy`; without a dev set, the training loss). At the end the student holds its best weights
    and is saved as `student.keras`.

    Args:
        distiller: the `Distiller` around the student (alpha=1 for the gold-label baseline).
        train_dataset: batches of `(inputs, targets)` (`transfer_batches` / `example_batches`).
        dev_dataset: gold-labelled batches for early stopping, or None.
        directory: the run directory (see the module docstring); created if missing.
        epochs: the most epochs to train, counting those of earlier runs in `directory`.
        patience: stop after this many epochs without a better dev score (0: never stop early).
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
    state = _read_state(state_path, monitor, mode)
    state["stopped_early"] = _out_of_patience(state, patience)  # judged again with this call's patience

    if not distiller.compiled:
        with distiller.distribute_strategy.scope():
            distiller.compile(optimizer=make_optimizer())

    checkpoint_path = os.path.join(directory, CHECKPOINT)
    _build(distiller)
    if state["epochs_completed"] and os.path.exists(checkpoint_path):
        distiller.load_weights(checkpoint_path)

    if not state["stopped_early"] and state["epochs_completed"] < epochs:
        _fit(
            distiller, train_dataset, dev_dataset, directory, state, epochs, patience, verbose, callbacks, backup_steps
        )

    state["finished"] = True
    cache.write_json(state_path, state)
    best_path = os.path.join(directory, BEST_WEIGHTS)
    if os.path.exists(best_path):
        distiller.student.load_weights(best_path)
    distiller.student.save(os.path.join(directory, STUDENT))
    summary = {key: state[key] for key in ("monitor", "best_value", "best_epoch", "epochs_completed", "stopped_early")}
    summary["history"] = state["history"]
    cache.write_json(os.path.join(directory, HISTORY), summary)
    return summary


def _fit(
    distiller: Distiller,
    train_dataset: tf.data.Dataset,
    dev_dataset: tf.data.Dataset | None,
    directory: str,
    state: dict[str, Any],
    epochs: int,
    patience: int,
    verbose: str | int,
    callbacks: Sequence[keras.callbacks.Callback],
    backup_steps: int,
) -> None:
    """The epochs of `train_student` still to run, from `state` on; raises `TrainingDivergedError` on NaN."""
    checkpoint_path = os.path.join(directory, CHECKPOINT)
    monitor_callback = _RunDirectoryMonitor(directory, state, patience)
    backup_directory = os.path.join(directory, "backup")
    _drop_stale_backup(backup_directory, state["epochs_completed"])
    all_callbacks = [
        monitor_callback,  # first: an epoch is checkpointed before its end-of-epoch backup
        _Backup(backup_directory, save_freq=backup_steps or "epoch"),
        keras.callbacks.TensorBoard(os.path.join(directory, "logs"), write_graph=False),
        *callbacks,
    ]
    distiller.fit(
        train_dataset,
        validation_data=dev_dataset,
        epochs=epochs,
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
            f"training stopped and {kept}. A rerun resumes from the checkpoint; consider a lower --learning_rate "
            f"(now {float(distiller.optimizer.learning_rate):g}) or checking the teacher logits for NaN."
        )
