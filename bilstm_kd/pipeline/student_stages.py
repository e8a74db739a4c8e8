"""The student stages: the distilled student (on the labelled transfer set) and the no-teacher baseline (on
gold labels), the same model and training loop."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

from bilstm_kd import cache
from bilstm_kd.data.readers import Examples
from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.pipeline.context import Run

_CONTINUABLE = ("epochs", "patience")  # a finished training can go on under new values of these


def more_epochs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a student's settings differ from its last run's only by more epochs (and perhaps another
    patience): it then trains on."""

    def others(depends_on: dict[str, Any]) -> str:
        distill = {key: value for key, value in depends_on.get("distill", {}).items() if key not in _CONTINUABLE}
        return cache.fingerprint({**depends_on, "distill": distill})

    epochs = (old.get("distill", {}).get("epochs", 0), new["distill"]["epochs"])
    return epochs[1] > epochs[0] and others(old) == others(new)


def baseline_epochs(run: Run) -> int:
    """The no-teacher student's epochs: --baseline_epochs, or --epochs when it is 0."""
    return run.config.distill.baseline_epochs or run.config.distill.epochs


def baseline_depends_on(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    return {**_student_depends_on(run), "distill": _distill_settings(run, baseline_epochs(run))}


def _distill_settings(run: Run, epochs: int) -> dict[str, Any]:
    distill = dataclasses.asdict(run.config.distill)
    for name in (
        "baseline",
        "tfidf_baseline",
        "student_seed",
        "baseline_epochs",
    ):  # kept out (the seed and epochs are given
        distill.pop(name)  # apart), so that the fingerprints of earlier runs stay the same
    return {**distill, "epochs": epochs}


def _student_depends_on(run: Run) -> dict[str, Any]:
    student = dataclasses.asdict(run.config.student)
    if student["tokenizer"] == "glue":  # the default: runs from before the flag keep their fingerprints
        student.pop("tokenizer")
    student.pop("lstm_kernel")  # how the LSTM runs, not what it computes: a GPU run resumes a CPU one
    return {
        "student_inputs": run.inputs.student_inputs_fingerprint,
        "student": student,
        "seed": run.student_seed,
        **selection(run),
    }


def selection(run: Run) -> dict[str, Any]:
    """What selects the best epoch, when --select_metric names it (so runs from before the flag keep their
    fingerprints); GLUE's F1 also depends on which class is positive."""
    if not run.config.data.select_metric:
        return {}
    return {"select_metric": run.task.metrics[0], "positive_label": run.task.positive_label}


def distill_depends_on(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    # The labelling's fingerprint names the teacher's weights and the transfer set: a relabelling reruns this.
    distill = _distill_settings(run, run.config.distill.epochs)
    return {**_student_depends_on(run), "distill": distill, "label": run.fingerprints["label"]}


def distill(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    settings = run.config.distill
    run.log(
        f"[distill] the student learns the teacher's logits on the transfer set: at most {settings.epochs} epochs, "
        f"stopping after {settings.patience} without a dev gain"
    )
    outputs = _train(
        run, "distill", run.config.distill.alpha, run.config.distill.epochs, _transfer_batches, _transfer_size(run)
    )
    run.log(f"[distill] dev: {outputs['dev']}")
    return outputs


def baseline(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    outputs = _train(run, "baseline", 1.0, baseline_epochs(run), _gold_batches, len(run.inputs.train))
    run.log(f"[baseline] dev: {outputs['dev']}")
    return outputs


def dev_batches(run: Run, examples: Examples):
    """Gold-labelled batches of a dev split, for early stopping and evaluation."""
    from bilstm_kd.distill.batches import example_batches

    batches = example_batches(examples.to_dataset(), run.tokenizer(), run.task.is_pair, batch_size=256)
    return distribute.shard_by_data(batches)


def _transfer_batches(run: Run):
    """The labelled transfer set, shuffled and bucketed by length: the distilled student's training data."""
    from bilstm_kd.distill.batches import transfer_batches
    from bilstm_kd.transfer.records import parse_records
    from bilstm_kd.transfer.shards import ShardedRecords

    store = ShardedRecords.open_existing(run.paths.labelled)
    records = parse_records(store.dataset(), run.task.is_pair, run.task.num_classes)
    batch_size = run.config.distill.batch_size
    return transfer_batches(records, run.tokenizer(), run.task.is_pair, batch_size, seed=run.student_seed)


def _transfer_size(run: Run) -> int:
    from bilstm_kd.transfer.shards import ShardedRecords

    return ShardedRecords.open_existing(run.paths.labelled).manifest["statistics"]["examples"]


def _gold_batches(run: Run):
    """The gold-labelled training set, shuffled and bucketed by length: the no-teacher baseline's data."""
    from bilstm_kd.distill.batches import example_batches

    return example_batches(
        run.inputs.train.to_dataset(),
        run.tokenizer(),
        run.task.is_pair,
        run.config.distill.batch_size,
        shuffle=True,
        seed=run.student_seed,
    )


def _train(
    run: Run, stage: str, alpha: float, epochs: int, train_batches: Callable[[Run], Any], examples: int
) -> dict[str, Any]:
    """Builds a fresh student and trains it on `train_batches(run)`, `examples` an epoch (resuming from the
    stage's directory); returns metrics and history."""
    import keras

    from bilstm_kd.distill.distiller import Distiller
    from bilstm_kd.distill.evaluation import evaluate_student
    from bilstm_kd.distill.training import make_optimizer, train_student
    from bilstm_kd.progress import TimeEstimate
    from bilstm_kd.student.models import build_student

    # Seeded before the dataset exists: tf.data's shuffle seeds take the global seed as well as their own,
    # so the batch order would otherwise depend on whichever stage last set it in this process.
    keras.utils.set_random_seed(run.student_seed)
    train_dataset = train_batches(run)
    config = run.config
    settings, student_settings = config.distill, config.student
    with run.strategy.scope():
        student = build_student(
            run.task,
            len(run.inputs.vocabulary),
            run.inputs.embeddings.weights,
            lstm_units=student_settings.lstm_units,
            hidden_units=student_settings.hidden_units,
            multichannel=student_settings.multichannel,
            dropout=student_settings.dropout,
            lstm_kernel=student_settings.lstm_kernel,
        )
        distiller = Distiller(
            student,
            alpha=alpha,
            distill_loss=settings.distill_loss,
            mse_reduction=settings.mse_reduction,
            temperature=settings.temperature,
            num_classes=run.task.num_classes,
            task_metrics=run.task.metrics,
            positive_class=run.task.positive_class,
        )
        distiller.compile(optimizer=make_optimizer(settings.optimizer, settings.learning_rate, settings.rho))
    dev = {split: dev_batches(run, examples) for split, examples in run.inputs.dev.items()}
    directory = getattr(run.paths, stage)
    # Batches are bucketed by length: a few more than examples / batch size.
    estimate = TimeEstimate(stage, epochs, math.ceil(examples / settings.batch_size), run.log)
    summary = train_student(
        distiller,
        distribute.shard_by_data(train_dataset),
        next(iter(dev.values())),
        directory,
        epochs=epochs,
        patience=settings.patience,
        verbose=run.verbose,
        backup_steps=config.distribute.backup_steps,
        callbacks=[estimate] if run.verbose else [],
    )
    dev_metrics = {split: evaluate_student(student, batches, run.task) for split, batches in dev.items()}
    return {
        "dev": dev_metrics,
        "training": {key: value for key, value in summary.items() if key != "history"},
        "history": summary.get("history", {}),
        "student_path": os.path.join(directory, "student.keras"),
        "wrote": directory,
    }
