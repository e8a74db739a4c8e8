"""The export stage: the distilled student as a SavedModel, as TFLite (word ids in) and as a MediaPipe
`TextClassifier` model (text in), each checked against the Keras student."""

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
    from bilstm_kd.export.common import write_labels
    from bilstm_kd.student.models import load_student

    student = load_student(results["distill"]["student_path"])
    directory = run.paths.export
    os.makedirs(directory, exist_ok=True)
    write_labels(directory, run.task.label_names)  # whichever exports are written
    outputs: dict[str, Any] = {"wrote": directory}
    if run.config.export.export_saved_model:
        outputs["saved_model"] = _saved_model(run, student, directory)
    if run.config.export.export_tflite:
        outputs["tflite"] = _tflite(run, student, directory)
    if run.config.export.export_mediapipe:
        outputs["mediapipe"] = _mediapipe(run, student, directory)
    return outputs


def _fold(run: Run, student) -> bool:
    from bilstm_kd.student.folding import fold_pays

    return fold_pays(student, run.config.export.fold_embeddings)


def _saved_model(run: Run, student, directory: str) -> dict[str, Any]:
    from bilstm_kd.export import saved_model

    vocabulary, max_length, tokenizer = run.inputs.vocabulary, run.config.student.max_length, run.tokenizer()
    fold = _fold(run, student)
    path = saved_model.export_saved_model(
        student, vocabulary, run.task, max_length, os.path.join(directory, "saved_model"), tokenizer.tokenizer, fold
    )
    sample = tuple(column[:64] for column in run.first_dev.texts)
    verification = saved_model.verify_saved_model(
        path, student, vocabulary, max_length, sample[0] if len(sample) == 1 else sample, tokenizer=tokenizer.tokenizer
    )
    return {"path": path, "bytes": directory_bytes(path), "folded": fold, "verification": verification}


def _tflite(run: Run, student, directory: str) -> dict[str, Any]:
    from bilstm_kd.export import tflite
    from bilstm_kd.text.vocab import WordTokenizer

    settings, max_length, name = run.config.export, run.config.student.max_length, run.config.student.tokenizer
    fold = _fold(run, student)
    path = tflite.export_tflite(
        student,
        run.task,
        run.inputs.vocabulary,
        max_length,
        os.path.join(directory, "student.tflite"),
        quantization=settings.tflite_quantization,
        tokenizer=name,
        fold=fold,
    )
    tokenizer = WordTokenizer(run.inputs.vocabulary.tokens, max_length, pad_to_max_length=True, tokenizer=name)
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
        "folded": fold,
        "verification": verification,
        **scores,
    }


def _mediapipe(run: Run, student, directory: str) -> dict[str, Any]:
    """`student_mediapipe.tflite`, run in MediaPipe's TextClassifier on every dev and test split when the
    package is installed; skipped, saying why, where the runtime cannot take the student."""
    from bilstm_kd.export import mediapipe

    if run.task.is_pair:
        return _skipped(run, "MediaPipe's TextClassifier takes one text; pair tasks use student.tflite")
    if run.config.student.tokenizer != "regex":
        return _skipped(run, "the MediaPipe file needs --tokenizer=regex (the tokenizer its runtime runs)")
    if not mediapipe.metadata_writer_available():
        return _skipped(run, "the mediapipe package is not installed (pip install '.[mobile]')")
    settings, vocabulary = run.config.export, run.inputs.vocabulary
    length = settings.mediapipe_length or mediapipe.mediapipe_length(_word_counts(run), run.config.student.max_length)
    fold = _fold(run, student)
    path = mediapipe.export_mediapipe(
        student,
        run.task,
        vocabulary,
        length,
        os.path.join(directory, mediapipe.FILE_NAME),
        quantization=settings.tflite_quantization,
        fold=fold,
    )
    outputs: dict[str, Any] = {
        "path": path,
        "bytes": os.path.getsize(path),
        "length": length,
        "quantization": settings.tflite_quantization,
        "folded": fold,
    }
    if not mediapipe.mediapipe_available():
        run.log("[export] the mediapipe runtime is not importable: the MediaPipe file is not checked")
        return {**outputs, "verification": None}
    for kind, splits in (("dev", run.inputs.dev), ("test", run.inputs.test)):
        for split, examples in splits.items():
            checked = mediapipe.verify_mediapipe(
                path, student, vocabulary, examples.texts[0], examples.labels, run.task
            )
            outputs.setdefault(kind, {})[split] = checked.pop("scores")
            if kind == "dev" and "verification" not in outputs:
                outputs["verification"] = checked
    run.log(f"[export] MediaPipe {length} words: dev {outputs['dev']}; vs Keras {outputs['verification']}")
    agreement = outputs["verification"]["label_agreement"]
    int8 = settings.tflite_quantization == "dynamic_int8"
    expected = INT8_MEDIAPIPE_AGREEMENT if int8 else MEDIAPIPE_AGREEMENT
    if agreement < expected:
        raise RuntimeError(
            f"{path}: MediaPipe's labels agree with the Keras student on only {100 * agreement:.2f}% of "
            f"{run.first_dev.origin} (at least {100 * expected:.1f}% expected with "
            f"--tflite_quantization={settings.tflite_quantization})"
        )
    return outputs


# The least share of dev labels MediaPipe's answers must share with the Keras student (a lower share means the
# file or its tokenizer is wrong), with float weights and with int8 weights, whose rounding moves the labels of
# a few texts the student is unsure of (emotion dev: 99.75%, HWU64 dev: 99.9%).
MEDIAPIPE_AGREEMENT = 0.999
INT8_MEDIAPIPE_AGREEMENT = 0.99


def _skipped(run: Run, reason: str) -> dict[str, Any]:
    run.log(f"[export] no MediaPipe file: {reason}")
    return {"skipped": reason}


def _word_counts(run: Run) -> list[int]:
    """Words per sentence of the training and dev texts, in the student's tokens."""
    from bilstm_kd.text.vocab import tokenize

    counts: list[int] = []
    for examples in (run.inputs.train, *run.inputs.dev.values()):
        counts += tokenize(list(examples.texts[0]), run.config.student.tokenizer).row_lengths().numpy().tolist()
    return counts
