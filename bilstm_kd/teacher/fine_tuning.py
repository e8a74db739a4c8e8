"""Fine-tuning the teacher on the task, keeping the epoch that scores best on dev, and reusing a finished one.

AdamW (weight decay 0.01, none on biases and layer norms) with BERT's warm-up and linear decay
(`schedule.WarmupLinearDecay`); batches group sentences of similar length (`batches.training_dataset`).
Each teacher's directory holds `teacher.keras` and its `teacher.json` record (`saving`): its dev metrics,
history and the fingerprint of everything it depends on, so that a finished fine-tuning with the same
settings and data is reused rather than repeated (an ensemble grown by one member fine-tunes only that one).
An interrupted fine-tuning resumes from its last backup (`resume`).
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd import cache
from bilstm_kd.data.tasks import Task
from bilstm_kd.distill.callbacks import SelectBestOnDev
from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.teacher import resume
from bilstm_kd.teacher.batches import training_dataset
from bilstm_kd.teacher.inference import EncodedTexts, TextExamples, encode_texts, encoded_logits, evaluate_teacher
from bilstm_kd.teacher.loading import load_teacher
from bilstm_kd.teacher.model import BertTeacher, TeacherEnsemble, teacher_size
from bilstm_kd.teacher.precision import FLOAT32, length_buckets, precision_policy
from bilstm_kd.teacher.saving import (
    TEACHER_FILE,
    TEACHER_METADATA,
    load_fine_tuned_teacher,
    member_directories,
    read_metadata,
    save_teacher,
)
from bilstm_kd.teacher.schedule import WarmupLinearDecay

# Bumped when the way a fine-tuned teacher is trained or saved changes, so old results are not reused.
FINE_TUNING_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class FineTuning:
    """How teachers are fine-tuned (the pipeline fills it from the `--teacher*` flags).

    Args:
        teacher: the pretrained BERT (see `loading.load_backbone_and_tokenizer`).
        pooling: the head's sentence representation (`BertTeacher`).
        max_length: the longest input in word pieces.
        epochs: fine-tuning epochs (the learning-rate schedule spans them all); the best on dev is kept.
        patience: stop after this many epochs without dev improvement (0: run every epoch).
        learning_rate: AdamW's peak learning rate.
        warmup_fraction: the fraction of steps with linear warm-up.
        batch_size: the global training batch; a multiple of the replicas.
        train_limit: fine-tune on the first N training examples only (0: all).
        members: how many teachers (seeds `seed` .. `seed + members - 1`) make the ensemble.
        eval_batch_size: examples per forward pass when scoring on dev.
        mixed_precision: `"off"`, `"auto"` or a mixed Keras policy (`precision.precision_policy`); the
            saved teacher is float32 either way.
        jit_compile: XLA, with batches padded to a few bucket lengths (`precision.length_buckets`).
        backup_steps: steps between mid-epoch backups a killed fine-tuning resumes from (`resume`; 0: epoch
            ends only).
    """

    teacher: str = "minilm"
    pooling: str = "cls"
    max_length: int = 128
    epochs: int = 3
    patience: int = 0
    learning_rate: float = 3e-5
    warmup_fraction: float = 0.1
    batch_size: int = 32
    train_limit: int = 0
    members: int = 1
    eval_batch_size: int = 256
    mixed_precision: str = "off"
    jit_compile: bool = False
    backup_steps: int = 0

    @property
    def dev_batch_size(self) -> int:
        return max(self.eval_batch_size, self.batch_size)


@dataclasses.dataclass(frozen=True)
class _Subset:
    texts: tuple[np.ndarray, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _limit(examples: TextExamples, limit: int) -> TextExamples:
    if not limit or limit >= len(examples):
        return examples
    return _Subset(tuple(np.asarray(column)[:limit] for column in examples.texts), np.asarray(examples.labels)[:limit])


class _SelectBestTeacher(SelectBestOnDev):
    """Scores the teacher on dev after each epoch and saves it whenever the task's main metric improves."""

    def __init__(
        self,
        dev: EncodedTexts,
        dev_labels: np.ndarray,
        task: Task,
        path: str,
        batch_size: int,
        verbose: int = 1,
        save: bool = True,
        jit_compile: bool = False,
        patience: int = 0,
    ):
        super().__init__(mode="max", best_epoch=0)
        self.patience = patience
        self.save = save
        self.dev = dev
        self.dev_labels = dev_labels
        self.task = task
        self.path = path
        self.batch_size = batch_size
        self.verbose = verbose
        self.jit_compile = jit_compile
        self.best_metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    def state(self) -> dict[str, Any]:
        """What a resumed fine-tuning carries over (`resume`)."""
        return {
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "best_metrics": self.best_metrics,
            "history": self.history,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.best_metrics, self.history = state["best_metrics"], state["history"]

    def score(self, epoch: int, logs: dict[str, Any]) -> float:
        progress = keras.utils.Progbar(len(self.dev), unit_name="example") if self.verbose else None
        logits = encoded_logits(self.model, self.dev, self.batch_size, progress, jit_compile=self.jit_compile)
        self.last_metrics = self.task.evaluate(self.dev_labels, np.argmax(logits, axis=-1))
        self.history.append({"epoch": epoch + 1, **logs, **{f"dev_{k}": v for k, v in self.last_metrics.items()}})
        return self.last_metrics[self.task.metrics[0]]

    def keep(self, epoch: int) -> None:
        self.best_metrics = self.last_metrics
        if self.save:  # under multi_worker, the chief alone
            save_teacher(self.model, self.path)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        improved = self.select(epoch, logs or {})
        stop = bool(self.patience) and epoch + 1 - self.best_epoch >= self.patience
        if self.verbose:
            summary = ", ".join(f"{name} {score:.4f}" for name, score in self.last_metrics.items())
            note = " (best so far, saved)" if improved else f" (stopping: no gain for {self.patience})" if stop else ""
            print(f"Teacher epoch {epoch + 1}: dev {summary}{note}", flush=True)
        if stop:
            self.model.stop_training = True


def _fine_tuning_settings(fine_tuning: FineTuning, task: Task, train: TextExamples, dev: TextExamples, seed: int):
    settings = dataclasses.asdict(fine_tuning)
    for name in ("eval_batch_size", "members", "jit_compile", "backup_steps"):  # none changes a fine-tuned teacher
        settings.pop(name)
    if not settings["patience"]:
        settings.pop("patience")  # teachers fine-tuned before early stopping keep their fingerprints
    settings["mixed_precision"] = precision_policy(fine_tuning.mixed_precision)  # what "auto" is here
    if settings["mixed_precision"] == FLOAT32:
        settings.pop("mixed_precision")  # teachers fine-tuned before the flag keep their fingerprints
    return {
        "format": FINE_TUNING_FORMAT,
        "teacher": settings,
        "task": task.name,
        "seed": seed,
        "train": cache.examples_fingerprint(_limit(train, fine_tuning.train_limit)),
        "dev": cache.examples_fingerprint(dev),
    }


def fine_tune_teacher(
    fine_tuning: FineTuning,
    task: Task,
    train: TextExamples,
    dev: TextExamples,
    directory: str | os.PathLike,
    seed: int = 0,
    verbose: int = 1,
    strategy: tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[BertTeacher | TeacherEnsemble, dict[str, float]]:
    """Fine-tunes the teacher on the task's training set, keeping the epoch that scores best on dev.

    AdamW (weight decay 0.01, none on biases and layer norms) with linear warm-up over
    `warmup_fraction` of the steps and linear decay to 0; batches group sentences of similar length.
    The best teacher is saved as `directory/teacher.keras` and `directory/teacher.json` records its dev
    metrics, the per-epoch history and a fingerprint of everything it depends on (teacher settings, task,
    seed, data). When `directory` already holds a finished fine-tuning with the same fingerprint, that
    teacher is loaded and returned instead of training again. With `members` N > 1, N teachers are
    fine-tuned this way, with seeds `seed` to `seed + N - 1`, in `member_directories(directory, N)`, and
    their `TeacherEnsemble` is returned with its own dev metrics.

    Args:
        fine_tuning: how to fine-tune (`FineTuning`).
        task: the task (number of classes, metrics; the first metric selects the epoch).
        train: the training examples (`texts`, `labels`); `train_limit` keeps the first N.
        dev: the dev examples used to pick the best epoch.
        directory: where the teacher is saved (the run's `teacher/`).
        seed: seeds the head initialisation, dropout and batch order.
        verbose: 1 shows a progress bar per epoch, 0 is silent.
        strategy: the `tf.distribute` strategy to train under (`bilstm_kd.distribute`; default: none).
            `batch_size` is the global batch. With several workers only the chief writes
            `directory`, and every worker returns the chief's saved teacher.
        callbacks: more Keras callbacks for `fit` (e.g. TensorBoard).

    Returns:
        The fine-tuned teacher (outside any strategy scope) and its dev metrics.
    """
    directories = member_directories(directory, fine_tuning.members)
    members = []
    for index, member_directory in enumerate(directories):
        if verbose and len(directories) > 1:
            print(f"Teacher {index + 1} of {len(directories)} (seed {seed + index}): {member_directory}", flush=True)
        members.append(
            _fine_tune_member(
                fine_tuning, task, train, dev, member_directory, seed + index, verbose, strategy, callbacks
            )
        )
    if distribute.is_chief(strategy or tf.distribute.get_strategy()):
        for stale in set(glob.glob(os.path.join(os.fspath(directory), "member_*"))) - set(directories):
            shutil.rmtree(stale)  # of a larger ensemble before: it would count in the teacher's size
    if len(members) == 1:
        return members[0]
    ensemble = TeacherEnsemble([teacher for teacher, _ in members])
    metrics = evaluate_teacher(ensemble, dev, task, fine_tuning.dev_batch_size)
    if verbose:
        member_metrics = [member_metrics for _, member_metrics in members]
        print(f"Teacher ensemble: dev {metrics}; its members: {member_metrics}", flush=True)
    return ensemble, metrics


def _fine_tune_member(
    fine_tuning: FineTuning,
    task: Task,
    train: TextExamples,
    dev: TextExamples,
    directory: str,
    seed: int,
    verbose: int,
    strategy: tf.distribute.Strategy | None,
    callbacks: Sequence[keras.callbacks.Callback],
) -> tuple[BertTeacher, dict[str, float]]:
    """One teacher of `fine_tune_teacher`: fine-tuned in `directory` with `seed`, or reused from there."""
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    settings = _fine_tuning_settings(fine_tuning, task, train, dev, seed)
    settings_fingerprint = cache.fingerprint(settings)
    policy = precision_policy(fine_tuning.mixed_precision)
    metadata = read_metadata(directory)
    if _is_finished(metadata, settings_fingerprint, directory):
        if verbose:
            print(f"Reusing the fine-tuned teacher in {directory} (same settings and data)", flush=True)
        return load_fine_tuned_teacher(directory, dtype_policy=policy), metadata["dev_metrics"]

    interrupted = resume.read_state(directory, settings_fingerprint)
    distribute.barrier(strategy)  # every worker has seen the old metadata before the chief removes it
    if chief and interrupted is None:
        _remove_teacher(directory)
    if fine_tuning.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"batch_size={fine_tuning.batch_size} must be a multiple of the {strategy.num_replicas_in_sync} "
            "replicas, so that every replica gets an equal share of each batch (Keras averages the replicas' "
            "mean losses)"
        )
    train = _limit(train, fine_tuning.train_limit)
    if len(train) == 0:
        raise ValueError("The teacher has no training examples (check --train_limit and --teacher_train_limit)")
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        teacher = load_teacher(
            fine_tuning.teacher, task.num_classes, fine_tuning.pooling, fine_tuning.max_length, dtype_policy=policy
        )
    train_encoded = encode_texts(teacher.preprocessor, *train.texts)
    steps_per_epoch = math.ceil(len(train) / fine_tuning.batch_size)
    with strategy.scope():
        compile_teacher(teacher, fine_tuning, total_steps=steps_per_epoch * fine_tuning.epochs)
    selector = _SelectBestTeacher(
        encode_texts(teacher.preprocessor, *dev.texts),
        np.asarray(dev.labels),
        task,
        os.path.join(directory, TEACHER_FILE),
        batch_size=fine_tuning.dev_batch_size,
        verbose=verbose,
        save=chief,
        jit_compile=fine_tuning.jit_compile,
        patience=fine_tuning.patience,
    )
    first_epoch, first_step, earlier_seconds = 0, 0, 0.0
    if interrupted is not None:
        with strategy.scope():
            resume.restore(teacher, directory, interrupted)
        selector.restore_state(interrupted["selection"])
        first_epoch, first_step = interrupted["epochs_done"], interrupted.get("steps_done", 0)
        earlier_seconds = interrupted["seconds"]
        if verbose:
            print(
                f"Resuming the teacher's fine-tuning in {directory} at epoch {first_epoch + 1}, step {first_step + 1}",
                flush=True,
            )
    started = time.time()
    checkpoint = resume.TrainingCheckpoint(
        directory,
        settings_fingerprint,
        selector.state,
        lambda: earlier_seconds + time.time() - started,
        every_steps=fine_tuning.backup_steps,
        save=chief,
    )
    labels = np.asarray(train.labels, dtype=np.int32)
    buckets = length_buckets(teacher.sequence_length) if fine_tuning.jit_compile else None

    def fit(epoch: int, last_epoch: int, skip: int) -> None:
        teacher.fit(
            distribute.shard_by_data(
                training_dataset(
                    train_encoded, labels, fine_tuning.batch_size, seed, buckets, first_epoch=epoch, skip_batches=skip
                )
            ),
            initial_epoch=epoch,
            epochs=last_epoch,
            steps_per_epoch=steps_per_epoch - skip,
            callbacks=[selector, checkpoint, *callbacks],
            shuffle=False,  # the dataset shuffles itself, by length windows
            verbose=verbose,
        )

    if first_step:  # the rest of an epoch interrupted midway, then the epochs after it
        checkpoint.first_step = first_step
        fit(first_epoch, first_epoch + 1, first_step)
        first_epoch += 1
    if first_epoch < fine_tuning.epochs and not getattr(teacher, "stop_training", False):
        fit(first_epoch, fine_tuning.epochs, 0)
    seconds = earlier_seconds + time.time() - started
    if chief:
        _write_fine_tuning_metadata(
            directory, settings, settings_fingerprint, selector, train, train_encoded, seconds, teacher
        )
        resume.remove(directory)
    distribute.barrier(strategy)  # the other workers read what the chief wrote
    return load_fine_tuned_teacher(directory, dtype_policy=policy), selector.best_metrics


def _is_finished(metadata: dict[str, Any] | None, settings_fingerprint: str, directory: str) -> bool:
    """Whether `directory` holds a finished fine-tuning with these settings and data."""
    return (
        metadata is not None
        and metadata.get("complete")
        and metadata.get("fingerprint") == settings_fingerprint
        and os.path.exists(os.path.join(directory, TEACHER_FILE))
    )


def _remove_teacher(directory: str) -> None:
    """Removes a teacher before it is trained again: an interrupted retraining never leaves one to be reused."""
    os.makedirs(directory, exist_ok=True)
    resume.remove(directory)  # of other settings
    for stale in (TEACHER_METADATA, TEACHER_FILE):
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))


def compile_teacher(teacher: BertTeacher, fine_tuning: FineTuning, total_steps: int) -> None:
    """AdamW with BERT's schedule and weight decay, loss-scaled under mixed_float16, XLA with `jit_compile`;
    call inside the strategy's scope."""
    schedule = WarmupLinearDecay(
        fine_tuning.learning_rate, warmup_steps=int(fine_tuning.warmup_fraction * total_steps), total_steps=total_steps
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.01, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    if teacher.precision == "mixed_float16":
        # float16 gradients underflow: the loss is scaled up (and the gradients back down) dynamically.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    if teacher.pooling == "mean":
        # The [CLS] pooler is not on the mean-pooled path: freezing it avoids "no gradient" warnings.
        teacher.backbone.get_layer("pooled_dense").trainable = False
    # Under XLA, batches are padded to a few bucket lengths (`precision.length_buckets`): XLA compiles one
    # program per shape, and unbucketed batches have as many shapes as lengths.
    # Batches are full and split evenly, so Keras' mean loss per replica, divided by the number of
    # replicas, sums to the mean over the global batch: a step equals one on a single device.
    teacher.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=fine_tuning.jit_compile,
    )


def _write_fine_tuning_metadata(
    directory: str,
    settings: dict[str, Any],
    settings_fingerprint: str,
    selector: _SelectBestTeacher,
    train: TextExamples,
    train_encoded: EncodedTexts,
    seconds: float,
    teacher: BertTeacher,
) -> None:
    teacher_path = os.path.join(directory, TEACHER_FILE)
    metadata = {
        "fingerprint": settings_fingerprint,
        "depends_on": settings,
        "teacher_fingerprint": cache.fingerprint(
            {"settings": settings_fingerprint, "weights": cache.file_fingerprint(teacher_path)}
        ),
        "dev_metrics": selector.best_metrics,
        "best_epoch": selector.best_epoch,
        "history": selector.history,
        "train_examples": len(train),
        "mean_train_length": float(np.mean(train_encoded.lengths)),
        "training_seconds": seconds,
        "size": teacher_size(teacher, max(1, round(float(np.mean(train_encoded.lengths))))),
        "complete": True,
    }
    cache.write_json(os.path.join(directory, TEACHER_METADATA), metadata, default=float)
