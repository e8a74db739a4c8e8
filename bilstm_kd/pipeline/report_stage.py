"""The report: every model whose outputs are up to date, side by side (dev metrics, size, speed), the files a user
ships, and the distilled student's classes, mistakes and calibration against its teacher.

It reads the stages' results and runs the models it reports on: it times them, scores them on test, and runs the
distilled student and the teacher once over the first dev split for their probabilities (calibration, the
sample of misclassified texts), which no stage keeps.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bilstm_kd.pipeline.context import Run
from bilstm_kd.pipeline.export_stage import directory_bytes

# How many dev examples the report times the models on (MNLI's dev sets have ~10k).
SPEED_EXAMPLES = 2048


def _examples_per_second(throughputs: dict[str, dict]) -> dict[str, float]:
    return {name: values["examples_per_second"] for name, values in throughputs.items()}


def _teacher_entry(run: Run, results: dict[str, Any], texts: tuple) -> dict[str, Any]:
    from bilstm_kd.report import speed
    from bilstm_kd.teacher import inference
    from bilstm_kd.teacher.model import teacher_size

    teacher = run.teacher_model()
    size = teacher_size(teacher, sequence_length=teacher.sequence_length)
    batches = {
        "batch_512": speed.teacher_batches(teacher.preprocessor, texts, 512),
        "batch_1": speed.teacher_batches(teacher.preprocessor, tuple(column[:32] for column in texts), 1),
    }
    embedding = size["embedding_parameters"]
    test = {
        split: inference.evaluate_teacher(
            teacher,
            examples,
            run.task,
            run.config.teacher.label_batch_size,
            verbose=run.verbose,
            jit_compile=run.config.teacher.teacher_jit_compile,
        )
        for split, examples in run.inputs.test.items()
    }
    return {
        "dev": results["teacher"]["dev"],
        **({"test": test} if test else {}),
        "members": run.config.teacher.teacher_ensemble,
        "parameters": {"embedding": embedding, "non_embedding": size["parameters"] - embedding},
        "file_bytes": directory_bytes(run.paths.teacher),
        "flops_per_example": size["flops_per_example"],
        "throughput": _examples_per_second(speed.throughputs(teacher, batches, run.timing_seconds)),
    }


def _student_entry(
    run: Run, outputs: dict[str, Any], batches: dict[str, list], in_detail: bool
) -> tuple[dict[str, Any], np.ndarray | None]:
    """A student's figures and, `in_detail` (the distilled one), also its per-class scores and confusion matrices,
    with its class probabilities on the first dev split (else None)."""
    from bilstm_kd.report import speed
    from bilstm_kd.student.models import load_student

    student = load_student(outputs["student_path"])
    parameters = speed.parameter_counts(student, speed.student_embedding_parameters(student))
    # Dev scores are the stage's (measured at selection); test is scored here, once, and in detail the
    # distilled student's classes on every split.
    splits = run.inputs.dev | run.inputs.test if in_detail else run.inputs.test
    evaluate = run.task.evaluate_in_detail if in_detail else run.task.evaluate
    probabilities = {split: _student_probabilities(run, student, examples) for split, examples in splits.items()}
    evaluated = {
        split: {**evaluate(examples.labels, np.argmax(probabilities[split], axis=-1)), "examples": len(examples)}
        for split, examples in splits.items()
    }
    details = ("per_class", "confusion")
    test = {
        split: {key: value for key, value in evaluated[split].items() if key not in details}
        for split in run.inputs.test
    }
    classes = {split: {key: scores[key] for key in details} for split, scores in evaluated.items()} if in_detail else {}
    entry = {
        "dev": outputs["dev"],
        **({"test": test} if test else {}),
        **({"classes": classes} if classes else {}),
        "parameters": {"embedding": parameters["embedding"], "non_embedding": parameters["non_embedding"]},
        "file_bytes": directory_bytes(outputs["student_path"]),
        "throughput": _examples_per_second(speed.throughputs(student, batches, run.timing_seconds)),
        "history": outputs.get("history", {}),
    }
    return entry, probabilities[_first_dev_split(run)] if in_detail else None


def _first_dev_split(run: Run) -> str:
    return next(iter(run.inputs.dev))


def _student_probabilities(run: Run, student, examples) -> np.ndarray:
    """The student's class probabilities on `examples`, in their order."""
    from scipy.special import softmax

    from bilstm_kd.distill.batches import example_batches
    from bilstm_kd.distill.evaluation import predict_logits

    batches = example_batches(examples.to_dataset(), run.tokenizer(), run.task.is_pair, batch_size=256, bucket=False)
    return softmax(predict_logits(student, batches), axis=-1)


def _teacher_probabilities(run: Run) -> np.ndarray:
    """The teacher's class probabilities on the first dev split, in its order: one pass, as the teacher stage
    scored it (the stage keeps only the scores)."""
    from scipy.special import softmax

    from bilstm_kd.teacher.inference import teacher_logits

    teacher = run.config.teacher
    logits = teacher_logits(
        run.teacher_model(),
        *run.first_dev.texts,
        batch_size=teacher.label_batch_size,
        jit_compile=teacher.teacher_jit_compile,
    )
    return softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def _calibration(run: Run, student: np.ndarray, teacher: np.ndarray | None) -> dict[str, Any]:
    """The reliability bins and ECE of the distilled student, and of its teacher, on the first dev split."""
    from bilstm_kd.report.calibration import reliability

    labels = run.first_dev.labels
    models = {"student": reliability(student, labels)}
    if teacher is not None:
        models["teacher"] = reliability(teacher, labels)
    return {"split": _first_dev_split(run), "models": models}


def _misclassified(run: Run, student: np.ndarray, teacher: np.ndarray | None) -> dict[str, Any]:
    """A sample of the first dev split's examples the distilled student gets wrong, with the teacher's answers."""
    from bilstm_kd.report.classes import misclassified_sample

    sample = misclassified_sample(
        run.first_dev.texts,
        run.first_dev.labels,
        student,
        run.task.label_names,
        None if teacher is None else np.argmax(teacher, axis=-1),
        seed=run.config.seed,
    )
    return {"split": _first_dev_split(run), **sample}


# The files a user ships: the export stage's output, its file in export/, what it takes, the flag that writes it.
SHIPPED = (
    ("saved_model", "export/saved_model/", "text in: TensorFlow Serving, TF.js or Python", "export_saved_model"),
    ("tflite", "export/student.tflite", "word ids in: tokenize with export/vocab.txt", "export_tflite"),
    (
        "mediapipe",
        "export/student_mediapipe.tflite",
        "text in: MediaPipe TextClassifier (Android, iOS, web)",
        "export_mediapipe",
    ),
)


def shipped_files(export: dict[str, Any] | None, settings: Any) -> list[dict[str, Any]]:
    """Each file a user ships: its size, or why it was not written.

    Args:
        export: the export stage's outputs (stages/export.json), None when it has none up to date.
        settings: the run's `ExportConfig` (its `export_*` switches).
    """
    shipped = []
    for key, file, takes, flag in SHIPPED:
        entry: dict[str, Any] = {"file": file, "takes": takes}
        written = (export or {}).get(key) or {}
        if "bytes" in written:
            entry["bytes"] = written["bytes"]
            if "verification" in written and written["verification"] is None:  # a MediaPipe file left unchecked
                entry["note"] = "the mediapipe runtime is not importable"
        elif written.get("skipped"):
            entry["skipped"] = written["skipped"]
        elif export is None:
            entry["skipped"] = "the export stage has no up-to-date output (add export to --stages)"
        elif not getattr(settings, flag):
            entry["skipped"] = f"--no{flag}"
        else:
            entry["skipped"] = "the export stage did not write it"
        shipped.append(entry)
    return shipped


def _title(run: Run) -> str:
    """The report's title: the task, or the data file it was read from."""
    from bilstm_kd.report.report import data_file_title

    data = run.config.data
    source = data.source()
    if source == "files" and not data.task:
        return data_file_title(data.train_file)
    return f"{run.task.name}, the demo corpus" if source == "demo" else run.task.name


def report(run: Run, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from bilstm_kd.report import speed
    from bilstm_kd.report.report import write_report

    started = time.perf_counter()
    texts = tuple(column[:SPEED_EXAMPLES] for column in run.first_dev.texts)
    models: dict[str, Any] = {}
    if "teacher" in results:
        models["teacher"] = _teacher_entry(run, results, texts)
    tokenizer = run.tokenizer()
    student_batches = {
        "batch_512": speed.student_batches(tokenizer, texts, 512),
        "batch_1": speed.student_batches(tokenizer, tuple(column[:256] for column in texts), 1),
    }
    calibration = None
    if "distill" in results:
        models["student"], student_probabilities = _student_entry(run, results["distill"], student_batches, True)
        teacher_probabilities = _teacher_probabilities(run) if "teacher" in models else None
        calibration = _calibration(run, student_probabilities, teacher_probabilities)
        models["student"]["misclassified"] = _misclassified(run, student_probabilities, teacher_probabilities)
    if "baseline" in results:
        models["baseline"], _ = _student_entry(run, results["baseline"], student_batches, in_detail=False)
    if "tfidf" in results:
        linear = results["tfidf"]
        models["tfidf"] = {
            key: linear[key] for key in ("dev", "test", "file_bytes", "throughput", "train_seconds") if key in linear
        }
    tflite = results.get("export", {}).get("tflite")
    if tflite:
        models["student_tflite"] = {
            "dev": tflite["dev"],
            **({"test": tflite["test"]} if "test" in tflite else {}),
            "file_bytes": tflite["bytes"],
            "verification": {k: tflite["verification"][k] for k in ("max_abs_diff", "label_agreement")},
        }
    mobile = results.get("export", {}).get("mediapipe", {})
    if mobile.get("dev"):
        models["student_mediapipe"] = {
            "dev": mobile["dev"],
            **({"test": mobile["test"]} if "test" in mobile else {}),
            "file_bytes": mobile["bytes"],
            "verification": mobile["verification"],
        }
    inputs = run.inputs
    report: dict[str, Any] = {
        "task": run.task.name,
        "title": _title(run),
        "metrics": list(run.task.metrics),
        "classes": list(run.task.label_names),
        "models": models,
        "stages": run.stage_seconds,
        "data": {
            "train": len(inputs.train),
            **{split: len(examples) for split, examples in (inputs.dev | inputs.test).items()},
        },
    }
    if "teacher" in models and "student" in models:
        report["speedup"] = {
            name: models["student"]["throughput"][name] / models["teacher"]["throughput"][name]
            for name in ("batch_512", "batch_1")
        }
    if calibration:
        report["calibration"] = calibration
    if "distill" in results:
        report["shipped"] = shipped_files(results.get("export"), run.config.export)
    if "augment" in results:
        report["transfer_set"] = results["augment"]["statistics"]
    run.stage_seconds["report"] = {"status": "ran", "seconds": round(time.perf_counter() - started, 1)}
    paths = write_report(report, run.config.workdir)
    run.log(f"[report] wrote {', '.join(paths.values())}")
    return report
