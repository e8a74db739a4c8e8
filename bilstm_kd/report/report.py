"""The run report: report.json (the numbers), report.md (the same in sentences and tables) and figures.

The report opens with the distilled student against its teacher and TF-IDF + logistic regression in plain
sentences (`summary`), then compares the models of a run side by side: for each, its dev metrics (and test
metrics, when the run has a test split), parameters (embeddings and the rest counted separately, as the paper
does), file size and inference throughput measured in the same process. Then the files a user ships and their
sizes (or why one was not written), the distilled student's classes worst first with its most confused pairs and
a sample of its mistakes (`classes`), and its calibration against its teacher (`calibration`).

Beside report.md: report_classes_<split>.csv and report_confusion_<split>.csv (every class, the full matrix),
report.png, report_confusion.png and report_calibration.png (`figures`).
"""

from __future__ import annotations

import os
from typing import Any

from bilstm_kd.cache import write_json
from bilstm_kd.report import figures
from bilstm_kd.report.calibration import calibration_lines
from bilstm_kd.report.classes import class_lines, write_class_files
from bilstm_kd.report.markdown import METRIC_NAMES, MODEL_NAMES, MODEL_ORDER, cell, format_number, table

REPORT_VERSION = 1
CALIBRATION_FIGURE = "report_calibration.png"


def validate_report(report: dict[str, Any]) -> None:
    """Checks the schema that readers of report.json rely on; raises ValueError naming the first problem."""
    for key in ("version", "task", "metrics", "models", "stages"):
        if key not in report:
            raise ValueError(f"report lacks {key!r}")
    for name, model in report["models"].items():
        if name not in MODEL_ORDER:
            raise ValueError(f"report has an unknown model {name!r}; models: {', '.join(MODEL_ORDER)}")
        if not isinstance(model.get("dev"), dict):
            raise ValueError(f"report model {name!r} lacks dev metrics")
        for split, metrics in model["dev"].items():
            missing = [metric for metric in report["metrics"] if metric not in metrics]
            if missing:
                raise ValueError(f"report model {name!r}, split {split!r} lacks metrics {missing}")


def _headline_split(student: dict[str, Any]) -> tuple[str, str]:
    """(kind, split) the opening speaks of: the first test split, else the first dev split."""
    kind = "test" if student.get("test") else "dev"
    return kind, next(iter(student[kind]))


def summary(report: dict[str, Any]) -> list[str]:
    """The report's opening: the distilled student against its teacher and against TF-IDF + logistic regression
    on the same split, its size and its speed, in plain sentences; empty without a distilled student."""
    models = report["models"]
    student = models.get("student")
    if not student or not student.get("dev"):
        return []
    metric = report["metrics"][0]
    kind, split = _headline_split(student)

    def score(name: str) -> float | None:
        value = models.get(name, {}).get(kind, {}).get(split, {}).get(metric)
        return None if value is None else 100 * value

    mine = score("student")
    where = split if split == kind else f"{split} ({kind})"
    sentence = f"The distilled student scores {mine:.1f}% {metric} on {where}"
    teacher = score("teacher")
    if teacher is not None:
        gap = mine - teacher
        relation = f"{abs(gap):.1f} points {'under' if gap < 0 else 'over'}" if round(gap, 1) else "the same as"
        sentence += f", {relation} its teacher ({teacher:.1f}%)"
    sentences = [sentence + "."]
    linear = score("tfidf")
    if linear is not None:
        gap = mine - linear
        seconds = models["tfidf"].get("train_seconds")
        fitted = f", fitted in {seconds:.{0 if seconds >= 10 else 1}f} s" if seconds is not None else ""
        if round(gap, 1) > 0:
            sentences.append(
                f"It beats TF-IDF + logistic regression on the same split by {gap:.1f} points ({linear:.1f}%{fitted})."
            )
        else:
            sentences.append(
                f"It does not beat TF-IDF + logistic regression on the same split ({linear:.1f}%{fitted}, "
                f"{-gap:.1f} points {'more' if gap < 0 else 'the same'}): on this data the linear model is the "
                "simpler pick, unless a stronger teacher (--teacher=mpnet) or more transfer data closes the gap."
            )
    shipped = models.get("student_tflite", {}).get("file_bytes") or student.get("file_bytes")
    per_sentence = student.get("throughput", {}).get("batch_1")
    if shipped and per_sentence:
        teacher_rate = models.get("teacher", {}).get("throughput", {}).get("batch_1")
        faster = f", {per_sentence / teacher_rate:.0f}x its teacher" if teacher_rate else ""
        file_kind = "TFLite file" if models.get("student_tflite") else "Keras file"
        sentences.append(
            f"Its {file_kind} is {shipped / 1e6:.1f} MB; it answers one sentence in {1000 / per_sentence:.2f} ms "
            f"on this machine{faster}."
        )
    return sentences


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: the opening sentences, one table of quality, size and speed, the files to ship, the distilled
    student's classes and calibration, then the transfer set and the stage timings."""
    lines = [f"# Distillation report: {report.get('title') or report['task']}", ""]
    opening = summary(report)
    if opening:
        lines += [" ".join(opening), ""]
    lines += _model_table(report)
    speedups = report.get("speedup")
    if speedups:
        lines += ["", f"Student speed-up over the teacher: {_speedups(speedups)}."]
    tflite = report["models"].get("student_tflite", {}).get("verification")
    if tflite:
        lines.append(
            f"TFLite vs Keras student on dev: max abs logit difference {tflite['max_abs_diff']:.2e}, "
            f"predicted labels agree on {100 * tflite['label_agreement']:.2f}%."
        )
    mobile = report["models"].get("student_mediapipe", {}).get("verification")
    if mobile:
        lines.append(
            f"MediaPipe TextClassifier ({mobile['length']} words, {100 * mobile['truncated']:.1f}% of dev sentences "
            f"longer) vs Keras student on dev: max abs probability difference {mobile['max_abs_diff']:.2e}, "
            f"predicted labels agree on {100 * mobile['label_agreement']:.2f}%."
        )
    lines += _shipped_lines(report.get("shipped"))
    lines += class_lines(report)
    if report.get("calibration"):
        lines += calibration_lines(report["calibration"], f"[{CALIBRATION_FIGURE}]({CALIBRATION_FIGURE})")
    transfer = report.get("transfer_set")
    if transfer:
        lines += ["", "## Transfer set", ""]
        lines += [f"- {key.replace('_', ' ')}: {format_number(value)}" for key, value in sorted(transfer.items())]
    lines += ["", "## Stages", ""]
    rows = [
        [stage, info.get("status", "-"), format_number(info.get("seconds"))] for stage, info in report["stages"].items()
    ]
    lines += table(["stage", "status", "seconds"], rows)
    return "\n".join(lines) + "\n"


def _model_table(report: dict[str, Any]) -> list[str]:
    splits = [
        (kind, split)
        for kind in ("dev", "test")
        for split in sorted({split for model in report["models"].values() for split in model.get(kind, {})})
    ]
    metric_columns = [(kind, split, metric) for kind, split in splits for metric in report["metrics"]]
    header = [
        "model",
        *[f"{split} {METRIC_NAMES.get(metric, metric)} (%)" for _, split, metric in metric_columns],
        "non-embedding params",
        "embedding params",
        "file MB",
        "examples/s (batch 512)",
        "examples/s (batch 1)",
    ]
    rows = []
    for name in MODEL_ORDER:
        model = report["models"].get(name)
        if model is None:
            continue
        members = model.get("members", 1)
        cells = [MODEL_NAMES[name] + (f" (ensemble of {members})" if members > 1 else "")]
        for kind, split, metric in metric_columns:
            value = model.get(kind, {}).get(split, {}).get(metric)
            cells.append(format_number(100 * value if value is not None else None))
        parameters = model.get("parameters", {})
        throughput = model.get("throughput", {})
        size = model.get("file_bytes")
        cells += [
            format_number(parameters.get("non_embedding")),
            format_number(parameters.get("embedding")),
            format_number(size / 1e6 if size else None, 2),
            format_number(throughput.get("batch_512")),
            format_number(throughput.get("batch_1")),
        ]
        rows.append(cells)
    return table(header, rows)


def _speedups(speedups: dict[str, float]) -> str:
    """{"batch_512": 48.1, "batch_1": 8.4} -> "batch of 512: 48.1x, batch of 1: 8.4x"."""
    return ", ".join(f"{key.replace('batch_', 'batch of ')}: {value:.1f}x" for key, value in speedups.items())


def _shipped_lines(shipped: list[dict[str, Any]] | None) -> list[str]:
    """The files a user ships with their sizes; those not written, and why."""
    if not shipped:
        return []
    lines = ["", "## Files to ship", ""]
    written = [entry for entry in shipped if "bytes" in entry]
    if written:
        rows = [
            [f"`{entry['file']}`", cell(entry["takes"]), format_number(entry["bytes"] / 1e6, 2)] for entry in written
        ]
        lines += table(["file", "what it takes", "MB"], rows)
    notes = [f"- `{entry['file']}` not checked here: {entry['note']}" for entry in written if entry.get("note")]
    notes += [f"- No `{entry['file']}`: {entry['skipped']}." for entry in shipped if "skipped" in entry]
    return lines + ([""] if written and notes else []) + notes


def data_file_title(path: str) -> str:
    """A report's title for a task read from a file: the file's name, after its folder's when the name alone says
    little (train.csv): "HWU64/train.csv", "my_intents.csv"."""
    name = os.path.basename(path)
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return f"{folder}/{name}" if name.lower().startswith("train") and folder else name


def write_report(report: dict[str, Any], directory: str) -> dict[str, str]:
    """Writes report.json, report.md, the per-class and confusion CSV files and the figures into `directory`;
    returns their paths by name."""
    report = {"version": REPORT_VERSION, **report}
    report["summary"] = summary(report)
    validate_report(report)
    paths = {name: os.path.join(directory, f"report.{name}") for name in ("json", "md", "png")}
    write_json(paths["json"], report)
    with open(paths["md"], "w", encoding="utf-8") as file:
        file.write(render_markdown(report))
    figures.plot(report, paths["png"])
    details = report["models"].get("student", {}).get("classes", {})
    for path in write_class_files(details, report.get("classes", []), directory):
        paths[os.path.splitext(os.path.basename(path))[0]] = path
    confusion = figures.plot_confusion(report, os.path.join(directory, "report_confusion.png"))
    if confusion:
        paths["confusion"] = confusion
    if report.get("calibration"):
        paths["calibration"] = figures.plot_reliability(
            report["calibration"], os.path.join(directory, CALIBRATION_FIGURE)
        )
    return paths
