"""Calibration: how far a model's confidence (its top class's probability) is from how often it is right.

    reliability(probabilities, labels)["ece"]   # expected calibration error, 0 (calibrated) to 1

The expected calibration error (ECE; Guo et al. 2017, "On calibration of modern neural networks") puts the
examples into `BINS` equal-width bins of confidence: bin i holds confidences in [i/BINS, (i+1)/BINS), the last
bin also 1.0. It is the mean over bins of |accuracy - mean confidence|, each bin weighted by its share of the
examples. The reliability diagram (`figures.plot_reliability`) draws the same bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bilstm_kd.report.markdown import MODEL_NAMES, percent, table

BINS = 10


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """The reliability bins and ECE of class probabilities `[examples, classes]` against gold class ids.

    Returns:
        `examples`, `ece`, the overall mean `confidence` and `accuracy`, and `bins`: for each bin its `lower` and
        `upper` edge and `examples`, and for a bin that holds any, their mean `confidence` and `accuracy`.
    """
    probabilities, labels = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    if probabilities.ndim != 2 or len(probabilities) != len(labels) or not len(labels):
        raise ValueError(
            f"reliability needs probabilities [examples, classes] and as many labels, at least one; received "
            f"shapes {probabilities.shape} and {labels.shape}"
        )
    if bins < 1:
        raise ValueError(f"bins must be 1 or more, received {bins}")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    index = np.clip(np.floor(confidence * bins).astype(int), 0, bins - 1)
    rows, ece = [], 0.0
    for number in range(bins):
        inside = index == number
        row: dict[str, Any] = {"lower": number / bins, "upper": (number + 1) / bins, "examples": int(inside.sum())}
        if row["examples"]:
            row["confidence"] = float(confidence[inside].mean())
            row["accuracy"] = float(correct[inside].mean())
            ece += row["examples"] / len(labels) * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    return {
        "examples": len(labels),
        "ece": float(ece),
        "confidence": float(confidence.mean()),
        "accuracy": float(correct.mean()),
        "bins": rows,
    }


def calibration_lines(calibration: dict[str, Any], figure: str) -> list[str]:
    """The report's calibration section: each model's ECE, its mean confidence against its accuracy, the figure."""
    bins = len(next(iter(calibration["models"].values()))["bins"])
    lines = [
        "",
        f"## Calibration: {calibration['split']}",
        "",
        f"Expected calibration error (ECE: {bins} equal-width bins of the top class's probability, each bin's "
        "|accuracy - mean probability| weighted by its share of the examples; 0 is perfectly calibrated). "
        f"Reliability diagram: {figure}.",
        "",
    ]
    rows = []
    for name, scores in calibration["models"].items():
        gap = scores["confidence"] - scores["accuracy"]
        leaning = "overconfident" if gap > 0.005 else "underconfident" if gap < -0.005 else "calibrated on average"
        rows.append(
            [
                MODEL_NAMES[name],
                percent(scores["ece"]),
                percent(scores["confidence"]),
                percent(scores["accuracy"]),
                leaning,
            ]
        )
    return lines + table(["model", "ECE (%)", "mean top probability (%)", "accuracy (%)", "on average"], rows)
