"""The report's figures: report.png (quality against speed, the students' training curves), report_confusion.png
(the distilled student's confusion matrices as heat maps) and report_calibration.png (reliability diagrams).

Each model keeps one colour in every figure (`markdown.model_colour`); a model's dev line is solid and its
training line dashed; axes and legends say what they show in words.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bilstm_kd.report.markdown import METRIC_NAMES, MODEL_NAMES, MODEL_ORDER, model_colour

ANNOTATED_CLASSES = 12  # up to this many classes, each cell of the heat map shows its count
HEAT_MAP_INCHES = 14.0  # the widest a heat map panel gets (at 150 classes, about 0.08 inch a class)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str, dpi: int = 110) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    _pyplot().close(figure)
    return path


def plot(report: dict[str, Any], path: str) -> str:
    """report.png: dev score against throughput (log scale), and the students' training curves."""
    from matplotlib.ticker import MaxNLocator

    metric = report["metrics"][0]
    words = METRIC_NAMES.get(metric, metric)
    figure, (speed_axis, curve_axis) = _pyplot().subplots(1, 2, figsize=(11, 4.2))
    for name in MODEL_ORDER:
        model = report["models"].get(name)
        throughput = (model or {}).get("throughput", {}).get("batch_512")
        if not model or not throughput or not model["dev"]:
            continue
        score = 100 * next(iter(model["dev"].values()))[metric]
        speed_axis.scatter(throughput, score, s=50, color=model_colour(name))
        speed_axis.annotate(MODEL_NAMES[name], (throughput, score), textcoords="offset points", xytext=(6, 4))
    speed_axis.set_xscale("log")
    speed_axis.set_xlabel("examples (sentences or pairs) per second, batches of 512, this machine")
    speed_axis.set_ylabel(f"dev {words} (%)")
    speed_axis.set_title("Quality against speed")
    speed_axis.grid(True, alpha=0.3)
    for name in ("student", "baseline"):
        history = report["models"].get(name, {}).get("history", {})
        for key, split, style in ((f"val_{metric}", "dev", "-"), (metric, "training data", "--")):
            if history.get(key):
                values = [100 * value for value in history[key]]
                curve_axis.plot(
                    range(1, len(values) + 1),
                    values,
                    style,
                    marker="o",
                    color=model_colour(name),
                    label=f"{MODEL_NAMES[name]}: {split} {words}",
                )
    curve_axis.set_xlabel("epoch")
    curve_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    curve_axis.set_ylabel(f"{words} (%)")
    curve_axis.set_title("Student training")
    curve_axis.grid(True, alpha=0.3)
    if curve_axis.lines:
        curve_axis.legend(fontsize=8)
    return _save(figure, path)


def plot_confusion(report: dict[str, Any], path: str) -> str | None:
    """report_confusion.png: the distilled student's confusion matrix of each split as a heat map, each row
    normalised to its gold class (a square-root colour scale, so that a few confusions still show); None without
    one. Every class is labelled, the font shrinking with the number of classes."""
    from matplotlib.colors import PowerNorm

    details = report["models"].get("student", {}).get("classes", {})
    names = report.get("classes", [])
    if not details:
        return None
    panel = min(2.5 + 0.3 * len(names), HEAT_MAP_INCHES)
    font = float(np.clip(0.8 * 72 * (panel - 2.5) / len(names), 3, 8))
    figure, axes = _pyplot().subplots(1, len(details), figsize=(panel * len(details) + 1, panel), squeeze=False)
    for axis, (split, values) in zip(axes[0], details.items()):
        counts = np.asarray(values["confusion"], dtype=float)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = axis.imshow(shares, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1))
        axis.set_xticks(range(len(names)), names, rotation=90, fontsize=font)
        axis.set_yticks(range(len(names)), names, fontsize=font)
        axis.set_xlabel("predicted class")
        axis.set_ylabel("gold class")
        axis.set_title(f"Distilled student, {split}: share of each gold class predicted as")
        if len(names) <= ANNOTATED_CLASSES:
            for (row, column), count in np.ndenumerate(counts):
                color = "white" if shares[row, column] > 0.5 else "black"
                axis.text(column, row, f"{int(count)}", ha="center", va="center", fontsize=7, color=color)
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return _save(figure, path, dpi=110 if len(names) <= 30 else 150)


def plot_reliability(calibration: dict[str, Any], path: str) -> str:
    """report_calibration.png: each model's accuracy against its mean top-class probability in each confidence
    bin (the diagonal is perfect calibration), and how many examples fall in each bin."""
    figure, (curve_axis, count_axis) = _pyplot().subplots(1, 2, figsize=(11, 4.2))
    curve_axis.plot([0, 1], [0, 1], ":", color="gray", label="perfectly calibrated")
    models = calibration["models"]
    width = 1 / (len(next(iter(models.values()))["bins"]) * (len(models) + 1))
    for offset, (name, scores) in enumerate(models.items()):
        filled = [row for row in scores["bins"] if row["examples"]]
        curve_axis.plot(
            [row["confidence"] for row in filled],
            [row["accuracy"] for row in filled],
            marker="o",
            color=model_colour(name),
            label=f"{MODEL_NAMES[name]} (ECE {100 * scores['ece']:.1f}%)",
        )
        count_axis.bar(
            [row["lower"] + (offset + 0.5) * width for row in scores["bins"]],
            [row["examples"] for row in scores["bins"]],
            width=width,
            align="edge",
            color=model_colour(name),
            label=MODEL_NAMES[name],
        )
    curve_axis.set_xlim(0, 1)
    curve_axis.set_ylim(0, 1.02)
    curve_axis.set_xlabel("mean probability of the predicted class, in each bin")
    curve_axis.set_ylabel("accuracy in the bin")
    curve_axis.set_title(f"Reliability on {calibration['split']}")
    curve_axis.grid(True, alpha=0.3)
    curve_axis.legend(fontsize=8, loc="upper left")
    count_axis.set_xlim(0, 1)
    count_axis.set_yscale("log", nonpositive="clip")
    count_axis.set_xlabel("probability of the predicted class (bins of equal width)")
    count_axis.set_ylabel("examples")
    count_axis.set_title(f"Examples per bin, {calibration['split']}")
    count_axis.legend(fontsize=8, loc="upper left")
    return _save(figure, path)
