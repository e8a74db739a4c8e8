"""The transfer-set stages: augment the training set, then label it with the teacher's logits."""

from __future__ import annotations

import dataclasses
from typing import Any

from bilstm_kd.pipeline.context import Run, spec_from


def augment_depends_on(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    settings = dataclasses.asdict(run.config.augment)
    tokenizer = run.config.student.tokenizer
    if tokenizer != "glue":  # the augmentation works on the student's tokens (glue: as before the flag)
        settings["tokenizer"] = tokenizer
    return {"data": run.inputs.data_fingerprint, "augment": settings, "seed": run.config.seed}


def augment(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    from bilstm_kd.transfer.augment import Augmentation
    from bilstm_kd.transfer.build import build_transfer_set

    config = run.config
    store = build_transfer_set(
        run.inputs.train,
        run.task,
        spec_from(Augmentation, config.augment),
        config.seed,
        run.paths.augmented,
        num_shards=config.augment.augment_shards,
        pos_cache_dir=run.paths.pos,
        tokenizer=config.student.tokenizer,
        verbose=run.verbose,
    )
    statistics = store.manifest["statistics"]
    run.log(f"[augment] transfer set: {statistics}")
    return {"statistics": statistics, "store_fingerprint": store.fingerprint, "wrote": run.paths.augmented}


def label_depends_on(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    from bilstm_kd.teacher.lite import DYNAMIC_INT8
    from bilstm_kd.teacher.precision import FLOAT32

    depends_on = {
        "teacher": results["teacher"]["teacher_fingerprint"],
        "transfer_set": results["augment"]["store_fingerprint"],
    }
    teacher = run.config.teacher
    policy = run.labelling_policy()
    if policy != FLOAT32:  # float32 labelling keeps the fingerprints of runs before the flag
        depends_on["precision"] = policy
    if teacher.label_precision == DYNAMIC_INT8:
        depends_on["lite"] = {"precision": teacher.label_precision, "check_margin": teacher.label_check_margin}
    return depends_on


def label(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    from bilstm_kd.teacher.lite import DYNAMIC_INT8, LiteTeacher
    from bilstm_kd.transfer.labelling import label_transfer_set
    from bilstm_kd.transfer.shards import ShardedRecords

    teacher = run.teacher_model(run.labelling_policy())
    lite = None
    if run.config.teacher.label_precision == DYNAMIC_INT8:
        lite = LiteTeacher(teacher)
        run.log(f"[label] the teacher as TFLite with int8 weights: {len(lite.flatbuffer) / 1e6:.1f} MB")
    store = label_transfer_set(
        teacher,
        ShardedRecords.open_existing(run.paths.augmented),
        run.paths.labelled,
        run.task,
        batch_size=run.config.teacher.label_batch_size,
        teacher_fingerprint=results["teacher"]["teacher_fingerprint"],
        verbose=run.verbose,
        strategy=run.strategy,
        jit_compile=run.config.teacher.teacher_jit_compile,
        lite=lite,
        check_margin=run.config.teacher.label_check_margin,
    )
    return {"statistics": store.manifest.get("statistics", {}), "wrote": run.paths.labelled}
