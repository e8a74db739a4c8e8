"""The export stage: the distilled student as a SavedModel and as TFLite, each checked against Keras."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from bilstm_kd import cache
from bilstm_kd.pipeline.context import Run


def depends_on(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    # The distill stage's fingerprint tells students apart that trained alike (say, two --student_seed).
    scored = {
        "student": results["distill"]["training"],
        "distill": run.fingerprints["distill"],
        "export": dataclasses.asdict(run.config.export),
        "tokenizer": run.config.student.tokenizer,
    }
    if run.inputs.test:  # the TFLite file is scored on them too (only with them: older runs keep their records)
        scored["test"] = {split: cache.examples_fingerprint(examples) for split, examples in run.inputs.test.items()}
    return scored


def directory_bytes(path: str) -> int:
    """The size of a file, or of every file below a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def export(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    from bilstm_kd.student.models import load_student

    student = load_student(results["distill"]["student_path"])
    directory = run.paths.export
    os.makedirs(directory, exist_ok=True)
    outputs: dict[str, Any] = {"wrote": directory}
    if run.config.export.export_saved_model:
        outputs["saved_model"] = _saved_model(run, student, directory)
    if run.config.export.export_tflite:
        outputs["tflite"] = _tflite(run, student, directory)
    return outputs


def _saved_model(run: Run, student, directory: str) -> dict[str, Any]:
    from bilstm_kd.export import saved_model

    vocabulary, max_length = run.inputs.vocabulary, run.config.student.max_length
    path = saved_model.export_saved_model(
        student, vocabulary, run.task, max_length, os.path.join(directory, "saved_model")
    )
    sample = tuple(column[:64] for column in run.first_dev.texts)
    verification = saved_model.verify_saved_model(
        path, student, vocabulary, max_length, sample[0] if len(sample) == 1 else sample
    )
    return {"path": path, "bytes": directory_bytes(path), "verification": verification}


def _tflite(run: Run, student, directory: str) -> dict[str, Any]:
    from bilstm_kd.export import tflite
    from bilstm_kd.text.vocab import WordTokenizer

    settings, max_length = run.config.export, run.config.student.max_length
    path = tflite.export_tflite(
        student,
        run.task,
        run.inputs.vocabulary,
        max_length,
        os.path.join(directory, "student.tflite"),
        quantization=settings.tflite_quantization,
    )
    tokenizer = WordTokenizer(run.inputs.vocabulary.tokens, max_length, pad_to_max_length=True)
    ids = tuple(tokenizer(np.asarray(column, dtype=object).astype(str)).numpy() for column in run.first_dev.texts)
    verification = tflite.verify_tflite(path, student, ids[0] if len(ids) == 1 else ids)
    scores = {}
    for kind, splits in (("dev", run.inputs.dev), ("test", run.inputs.test)):
        for split, examples in splits.items():
            logits = tflite.tflite_predict_texts(path, examples.texts[0] if not examples.is_pair else examples.texts)
            scores.setdefault(kind, {})[split] = run.task.evaluate(examples.labels, np.argmax(logits, axis=-1))
    run.log(f"[export] TFLite {scores}; vs Keras: {verification}")
    return {
        "path": path,
        "bytes": os.path.getsize(path),
        "quantization": settings.tflite_quantization,
        "verification": verification,
        **scores,
    }
