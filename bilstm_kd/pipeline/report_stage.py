"""The report: every model whose outputs are up to date, side by side (dev metrics, size, speed)."""

from __future__ import annotations

import time
from typing import Any

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


def _student_entry(run: Run, outputs: dict[str, Any], batches: dict[str, list], in_detail: bool) -> dict[str, Any]:
    """A student's figures; `in_detail`: also its per-class scores and confusion matrices (the distilled one)."""
    from bilstm_kd.distill.evaluation import evaluate_student
    from bilstm_kd.pipeline.student_stages import dev_batches
    from bilstm_kd.report import speed
    from bilstm_kd.student.models import load_student

    student = load_student(outputs["student_path"])
    parameters = speed.parameter_counts(student, speed.student_embedding_parameters(student))
    # Dev scores are the stage's (measured at selection); test is scored here, once, and in detail the
    # distilled student's classes on every split.
    splits = run.inputs.dev | run.inputs.test if in_detail else run.inputs.test
    evaluated = {
        split: evaluate_student(student, dev_batches(run, examples), run.task, in_detail)
        for split, examples in splits.items()
    }
    details = ("per_class", "confusion")
    test = {
        split: {key: value for key, value in evaluated[split].items() if key not in details}
        for split in run.inputs.test
    }
    classes = {split: {key: scores[key] for key in details} for split, scores in evaluated.items()} if in_detail else {}
    return {
        "dev": outputs["dev"],
        **({"test": test} if test else {}),
        **({"classes": classes} if classes else {}),
        "parameters": {"embedding": parameters["embedding"], "non_embedding": parameters["non_embedding"]},
        "file_bytes": directory_bytes(outputs["student_path"]),
        "throughput": _examples_per_second(speed.throughputs(student, batches, run.timing_seconds)),
        "history": outputs.get("history", {}),
    }


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
    for stage, model in (("distill", "student"), ("baseline", "baseline")):
        if stage in results:
            models[model] = _student_entry(run, results[stage], student_batches, in_detail=stage == "distill")
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
    if "augment" in results:
        report["transfer_set"] = results["augment"]["statistics"]
    run.stage_seconds["report"] = {"status": "ran", "seconds": round(time.perf_counter() - started, 1)}
    paths = write_report(report, run.config.workdir)
    run.log(f"[report] wrote {', '.join(paths.values())}")
    return report
