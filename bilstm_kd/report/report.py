"""The run report: report.json (the numbers), report.md (the same as tables) and report.png (plots).

The report compares the models of a run side by side: for each, its dev metrics (and test metrics, when
the run has a test split), parameters (embeddings and the rest counted separately, as the paper does), file
size and inference throughput measured in the same process; then the distilled student's precision, recall
and F1 per class and its confusion matrix (also plotted, as report_confusion.png, up to `PLOTTED_CLASSES`).
"""

from __future__ import annotations

import os
from typing import Any

from bilstm_kd.cache import write_json

REPORT_VERSION = 1
PLOTTED_CLASSES = 30
MODEL_ORDER = ("teacher", "student", "baseline", "tfidf", "student_tflite", "student_mediapipe")
MODEL_NAMES = {
    "teacher": "BERT teacher",
    "student": "distilled BiLSTM",
    "baseline": "BiLSTM, no teacher",
    "tfidf": "TF-IDF + logistic regression",
    "student_tflite": "distilled BiLSTM, TFLite",
    "student_mediapipe": "distilled BiLSTM, MediaPipe TextClassifier",
}


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


def _format_number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


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
    """report.md: one table of quality, size and speed, then the transfer set and the stage timings."""
    splits = [
        (kind, split)
        for kind in ("dev", "test")
        for split in sorted({split for model in report["models"].values() for split in model.get(kind, {})})
    ]
    metric_columns = [(kind, split, metric) for kind, split in splits for metric in report["metrics"]]
    header = ["model", *[f"{split} {metric} (%)" for _, split, metric in metric_columns]]
    header += [
        "non-embedding params",
        "embedding params",
        "file MB",
        "examples/s (batch 512)",
        "examples/s (batch 1)",
    ]
    lines = [f"# Distillation report: {report['task']}", ""]
    opening = summary(report)
    if opening:
        lines += [" ".join(opening), ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for name in MODEL_ORDER:
        model = report["models"].get(name)
        if model is None:
            continue
        members = model.get("members", 1)
        cells = [MODEL_NAMES[name] + (f" (ensemble of {members})" if members > 1 else "")]
        for kind, split, metric in metric_columns:
            value = model.get(kind, {}).get(split, {}).get(metric)
            cells.append(_format_number(100 * value if value is not None else None))
        parameters = model.get("parameters", {})
        throughput = model.get("throughput", {})
        size = model.get("file_bytes")
        cells += [
            _format_number(parameters.get("non_embedding")),
            _format_number(parameters.get("embedding")),
            _format_number(size / 1e6 if size else None, 2),
            _format_number(throughput.get("batch_512")),
            _format_number(throughput.get("batch_1")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    speedups = report.get("speedup")
    if speedups:
        lines += ["", "Student speed-up over the teacher: " + ", ".join(f"{k} {v:.1f}x" for k, v in speedups.items())]
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
    lines += _class_tables(report)
    transfer = report.get("transfer_set")
    if transfer:
        lines += ["", "## Transfer set", ""]
        lines += [f"- {key.replace('_', ' ')}: {_format_number(value)}" for key, value in sorted(transfer.items())]
    lines += ["", "## Stages", "", "| stage | status | seconds |", "|---|---|---|"]
    for stage, info in report["stages"].items():
        lines.append(f"| {stage} | {info.get('status', '-')} | {_format_number(info.get('seconds'))} |")
    return "\n".join(lines) + "\n"


def _class_tables(report: dict[str, Any]) -> list[str]:
    """The distilled student's per-class scores and confusion matrix of each dev and test split."""
    lines: list[str] = []
    names = report.get("classes", [])
    for split, details in report["models"].get("student", {}).get("classes", {}).items():
        lines += [
            "",
            f"## Distilled student per class: {split}",
            "",
            "| class | precision (%) | recall (%) | F1 (%) | support |",
        ]
        lines.append("|---|---|---|---|---|")
        for name, scores in details["per_class"].items():
            cells = [_format_number(100 * scores[key]) for key in ("precision", "recall", "f1")]
            lines.append(f"| {name} | {' | '.join(cells)} | {scores['support']:,} |")
        lines += ["", f"Confusion matrix ({split}): rows are the gold class, columns the predicted one.", ""]
        lines.append("| gold \\ predicted | " + " | ".join(names) + " |")
        lines.append("|" + "---|" * (len(names) + 1))
        lines += [
            f"| {name} | " + " | ".join(f"{count:,}" for count in row) + " |"
            for name, row in zip(names, details["confusion"])
        ]
    return lines


def plot_confusion(report: dict[str, Any], path: str) -> str | None:
    """report_confusion.png: the distilled student's confusion matrices, rows normalised to the gold class;
    None when there is none or the task has more than `PLOTTED_CLASSES` classes."""
    details = report["models"].get("student", {}).get("classes", {})
    names = report.get("classes", [])
    if not details or len(names) > PLOTTED_CLASSES:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    size = 2.5 + 0.35 * len(names)
    figure, axes = plt.subplots(1, len(details), figsize=(size * len(details), size), squeeze=False)
    for axis, (split, values) in zip(axes[0], details.items()):
        counts = np.asarray(values["confusion"], dtype=float)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        axis.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        axis.set_yticks(range(len(names)), names, fontsize=7)
        axis.set_xlabel("predicted")
        axis.set_ylabel("gold")
        axis.set_title(f"Distilled student, {split}")
        if len(names) <= 12:
            for (row, column), count in np.ndenumerate(counts):
                color = "white" if shares[row, column] > 0.5 else "black"
                axis.text(column, row, f"{int(count)}", ha="center", va="center", fontsize=7, color=color)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot(report: dict[str, Any], path: str) -> str:
    """report.png: dev score against throughput (log scale), and the students' training curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = report["metrics"][0]
    figure, (speed_axis, curve_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in MODEL_ORDER:
        model = report["models"].get(name)
        throughput = (model or {}).get("throughput", {}).get("batch_512")
        if not model or not throughput or not model["dev"]:
            continue
        score = 100 * next(iter(model["dev"].values()))[metric]
        speed_axis.scatter(throughput, score, s=50)
        speed_axis.annotate(MODEL_NAMES[name], (throughput, score), textcoords="offset points", xytext=(6, 4))
    speed_axis.set_xscale("log")
    speed_axis.set_xlabel("examples (sentences or pairs) per second, batch 512, this machine")
    speed_axis.set_ylabel(f"dev {metric} (%)")
    speed_axis.set_title("Quality against speed")
    speed_axis.grid(True, alpha=0.3)
    for name in ("student", "baseline"):
        history = report["models"].get(name, {}).get("history", {})
        for key in (f"val_{metric}", metric):
            if history.get(key):
                values = [100 * value for value in history[key]]
                epochs = range(1, len(values) + 1)
                curve_axis.plot(epochs, values, marker="o", label=f"{MODEL_NAMES[name]}: {key}")
    curve_axis.set_xlabel("epoch")
    curve_axis.set_ylabel(f"{metric} (%)")
    curve_axis.set_title("Student training")
    curve_axis.grid(True, alpha=0.3)
    if curve_axis.lines:
        curve_axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_report(report: dict[str, Any], directory: str) -> dict[str, str]:
    """Writes report.json, report.md and report.png into `directory`; returns their paths."""
    report = {"version": REPORT_VERSION, **report}
    report["summary"] = summary(report)
    validate_report(report)
    paths = {name: os.path.join(directory, f"report.{name}") for name in ("json", "md", "png")}
    write_json(paths["json"], report)
    with open(paths["md"], "w", encoding="utf-8") as file:
        file.write(render_markdown(report))
    plot(report, paths["png"])
    confusion = plot_confusion(report, os.path.join(directory, "report_confusion.png"))
    if confusion:
        paths["confusion"] = confusion
    return paths
