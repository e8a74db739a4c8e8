"""The teacher stage: fine-tune the teacher (or an ensemble of them) and score it on every dev split."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from bilstm_kd.config import TeacherConfig
from bilstm_kd.pipeline.context import Run, spec_from
from bilstm_kd.pipeline.student_stages import selection


def fine_tuning_settings(teacher: TeacherConfig, backup_steps: int = 0):
    """The `--teacher*` flags (and `--backup_steps`) as the teacher package's `FineTuning`."""
    from bilstm_kd.teacher.fine_tuning import FineTuning

    return spec_from(
        FineTuning,
        teacher,
        {"backup_steps": backup_steps},
        pooling="teacher_pooling",
        max_length="teacher_max_length",
        epochs="teacher_epochs",
        patience="teacher_patience",
        learning_rate="teacher_learning_rate",
        warmup_fraction="teacher_warmup_fraction",
        batch_size="teacher_batch_size",
        train_limit="teacher_train_limit",
        members="teacher_ensemble",
        eval_batch_size="label_batch_size",
        jit_compile="teacher_jit_compile",
    )


def depends_on(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    from bilstm_kd.teacher.precision import FLOAT32, precision_policy

    settings = dataclasses.asdict(run.config.teacher)
    if settings["teacher_ensemble"] == 1:
        settings.pop("teacher_ensemble")  # keeps the fingerprints of runs from before the flag
    if not settings["teacher_patience"]:
        settings.pop("teacher_patience")  # likewise
    for name in ("teacher_jit_compile", "label_precision", "label_check_margin"):
        settings.pop(name)  # how the teacher runs, or labels: not what it learns
    settings["mixed_precision"] = precision_policy(settings["mixed_precision"])  # what "auto" means here
    if settings["mixed_precision"] == FLOAT32:
        settings.pop("mixed_precision")
    return {"data": run.inputs.data_fingerprint, "teacher": settings, "seed": run.config.seed, **selection(run)}


def fine_tune(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    from bilstm_kd.progress import TimeEstimate
    from bilstm_kd.teacher import fine_tuning, inference, saving

    config = run.config
    teacher = config.teacher
    patience = teacher.teacher_patience
    run.log(
        f"[teacher] fine-tuning {teacher.teacher} ({teacher.teacher_pooling} pooling, learning rate "
        f"{teacher.teacher_learning_rate:g}) on {len(run.inputs.train):,} examples: at most {teacher.teacher_epochs} "
        f"epochs" + (f", stopping after {patience} without a dev gain" if patience > 0 else "")
    )
    steps = math.ceil(len(run.inputs.train) / teacher.teacher_batch_size)
    estimate = TimeEstimate("teacher", teacher.teacher_epochs, steps, run.log)
    model, _ = fine_tuning.fine_tune_teacher(
        fine_tuning_settings(config.teacher, config.distribute.backup_steps),
        run.task,
        run.inputs.train,
        run.first_dev,
        run.paths.teacher,
        config.seed,
        run.verbose,
        strategy=run.strategy,
        callbacks=[estimate] if run.verbose else [],
    )
    if config.distribute.strategy == "default":
        run.teachers[model.precision] = model  # otherwise `Run.teacher_model` loads it onto this worker's devices
    dev_metrics = {
        split: inference.evaluate_teacher(
            model,
            examples,
            run.task,
            config.teacher.label_batch_size,
            verbose=run.verbose,
            jit_compile=config.teacher.teacher_jit_compile,
        )
        for split, examples in run.inputs.dev.items()
    }
    run.log(f"[teacher] dev: {dev_metrics}")
    return {
        "dev": dev_metrics,
        "teacher_fingerprint": saving.saved_teacher_fingerprint(run.paths.teacher, config.teacher.teacher_ensemble),
        "wrote": run.paths.teacher,
    }
