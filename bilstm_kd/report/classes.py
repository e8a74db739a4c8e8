"""The distilled student's classes in the report, readable at 2 classes and at 150.

report.md lists the classes worst first by F1 (every class up to `ALL_CLASSES_UP_TO`, else the `WORST_CLASSES`
worst), the most confused pairs, the confusion matrix as a table up to `MATRIX_CLASSES` classes, and a sample of
misclassified dev texts. The full per-class table (worst first) and the confusion matrix of each split are CSV
files beside the report (`class_file`, `confusion_file`); the matrix is also drawn (`figures.plot_confusion`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bilstm_kd.report.markdown import cell, format_number, percent, table

WORST_CLASSES = 10
ALL_CLASSES_UP_TO = 15
MATRIX_CLASSES = 10
CONFUSED_PAIRS = 10
MISCLASSIFIED_SAMPLE = 10
TEXT_CHARACTERS = 120  # of a misclassified text shown in report.md
CONFUSION_FIGURE = "report_confusion.png"


def class_file(split: str) -> str:
    return f"report_classes_{split}.csv"


def confusion_file(split: str) -> str:
    return f"report_confusion_{split}.csv"


def worst_first(per_class: dict[str, dict[str, Any]]) -> list[str]:
    """Class names worst first: by F1, ties by more gold examples (more answers wrong), then by name; classes
    with no gold example in the split come last (they have no recall to speak of)."""

    def key(name: str) -> tuple:
        scores = per_class[name]
        return scores["support"] == 0, scores["f1"] or 0.0, -scores["support"], name

    return sorted(per_class, key=key)


def confused_pairs(confusion: Sequence[Sequence[int]], names: Sequence[str], most: int = CONFUSED_PAIRS) -> list[dict]:
    """The `most` largest off-diagonal cells of a confusion matrix (rows gold, columns predicted), largest first:
    `gold`, `predicted`, `count` and `share` (of the gold class's examples)."""
    counts = np.asarray(confusion, dtype=np.int64)
    mistakes = counts.copy()
    np.fill_diagonal(mistakes, 0)
    cells = sorted(zip(*np.nonzero(mistakes)), key=lambda at: (-mistakes[at], at))[:most]
    support = counts.sum(axis=1)
    return [
        {
            "gold": names[gold],
            "predicted": names[predicted],
            "count": int(mistakes[gold, predicted]),
            "share": float(mistakes[gold, predicted] / support[gold]),
        }
        for gold, predicted in cells
    ]


def misclassified_sample(
    texts: Sequence[Sequence[str]],
    labels: np.ndarray,
    probabilities: np.ndarray,
    names: Sequence[str],
    teacher_predictions: np.ndarray | None = None,
    size: int = MISCLASSIFIED_SAMPLE,
    seed: int = 0,
) -> dict[str, Any]:
    """A seeded random sample of the examples a model gets wrong, in data order.

    Args:
        texts: one sequence of texts per text column (a pair's two are joined with " [SEP] ").
        labels: gold class ids.
        probabilities: the model's class probabilities `[examples, classes]`.
        names: class names by id.
        teacher_predictions: the teacher's class ids, shown beside each example when given.
        size: how many to draw at most.
        seed: seeds the draw.

    Returns:
        `wrong` (how many examples the model gets wrong), `examples` (of how many) and `sample`: for each drawn
        example its `text`, `gold`, `predicted`, `probability` (of the predicted class) and maybe `teacher`.
    """
    labels = np.asarray(labels)
    predictions = np.argmax(probabilities, axis=-1)
    wrong = np.flatnonzero(predictions != labels)
    drawn = np.sort(np.random.default_rng(seed).choice(wrong, size=min(size, len(wrong)), replace=False))
    sample = []
    for index in drawn:
        example = {
            "text": " [SEP] ".join(str(column[index]) for column in texts),
            "gold": names[labels[index]],
            "predicted": names[predictions[index]],
            "probability": float(probabilities[index, predictions[index]]),
        }
        if teacher_predictions is not None:
            example["teacher"] = names[teacher_predictions[index]]
        sample.append(example)
    return {"wrong": len(wrong), "examples": len(labels), "sample": sample}


def write_class_files(details: dict[str, dict[str, Any]], names: Sequence[str], directory: str) -> list[str]:
    """For each split of `details` (split -> `per_class`, `confusion`): its per-class scores, worst first, and its
    confusion matrix as CSV files in `directory`; returns their paths."""
    paths = []
    for split, scores in details.items():
        per_class = scores["per_class"]
        rows = [
            [
                name,
                *(_rounded(per_class[name][key]) for key in ("precision", "recall", "f1")),
                per_class[name]["support"],
            ]
            for name in worst_first(per_class)
        ]
        paths.append(
            _write_csv(
                os.path.join(directory, class_file(split)), ["class", "precision", "recall", "f1", "support"], rows
            )
        )
        matrix = [[name, *row] for name, row in zip(names, scores["confusion"])]
        paths.append(_write_csv(os.path.join(directory, confusion_file(split)), ["gold \\ predicted", *names], matrix))
    return paths


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _write_csv(path: str, header: list[str], rows: list[list[Any]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def class_lines(report: dict[str, Any]) -> list[str]:
    """report.md's sections on the distilled student's classes: for each split its classes worst first, its most
    confused pairs and its confusion matrix; then the sample of misclassified examples."""
    names = report.get("classes", [])
    student = report["models"].get("student", {})
    lines: list[str] = []
    for split, details in student.get("classes", {}).items():
        lines += _split_lines(split, details, names)
    return lines + _misclassified_lines(student.get("misclassified"))


def _split_lines(split: str, details: dict[str, Any], names: Sequence[str]) -> list[str]:
    order = worst_first(details["per_class"])
    shown = order if len(order) <= ALL_CLASSES_UP_TO else order[:WORST_CLASSES]
    where = f"[{class_file(split)}]({class_file(split)})"
    if len(shown) < len(order):
        opening = f"{len(order)} classes, worst first by F1; the {len(shown)} worst below, all {len(order)} in {where}."
    else:
        opening = f"{len(order)} classes, worst first by F1 (also in {where})."
    rows = []
    for name in shown:
        scores = details["per_class"][name]
        rows.append(
            [cell(name), *(percent(scores[key]) for key in ("precision", "recall", "f1")), f"{scores['support']:,}"]
        )
    lines = ["", f"## Distilled student per class: {split}", "", opening, ""]
    lines += table(["class", "precision (%)", "recall (%)", "F1 (%)", "support"], rows)
    if len(names) > 2:  # with two classes the matrix below says the same
        lines += _pair_lines(split, details["confusion"], names)
    figure = f"[{CONFUSION_FIGURE}]({CONFUSION_FIGURE})"
    matrix = f"[{confusion_file(split)}]({confusion_file(split)})"
    lines += [
        "",
        f"Confusion matrix ({split}, rows are the gold class, columns the predicted one): {matrix}; drawn in {figure}.",
    ]
    if len(names) <= MATRIX_CLASSES:
        rows = [[cell(name), *(f"{count:,}" for count in row)] for name, row in zip(names, details["confusion"])]
        lines += ["", *table(["gold \\ predicted", *(cell(name) for name in names)], rows)]
    return lines


def _pair_lines(split: str, confusion: Sequence[Sequence[int]], names: Sequence[str]) -> list[str]:
    pairs = confused_pairs(confusion, names)
    if not pairs:
        return ["", f"No confusions on {split}: every example gets its gold class."]
    rows = [
        [cell(pair["gold"]), cell(pair["predicted"]), f"{pair['count']:,}", percent(pair["share"])] for pair in pairs
    ]
    lines = ["", f"Most confused on {split} (gold -> predicted), most examples first:", ""]
    return lines + table(["gold", "predicted as", "examples", "share of the gold class (%)"], rows)


def _misclassified_lines(mistakes: dict[str, Any] | None) -> list[str]:
    if not mistakes:
        return []
    split, wrong, examples = mistakes["split"], mistakes["wrong"], mistakes["examples"]
    lines = ["", f"## Misclassified examples: {split}", ""]
    if not wrong:
        return [*lines, f"The distilled student gets every one of the {examples:,} {split} examples right."]
    sample = mistakes["sample"]
    if len(sample) < wrong:
        which = f"{len(sample)} of them, drawn at random, in data order:"
    else:
        which = "this one:" if wrong == 1 else "all of them, in data order:"
    lines += [f"The distilled student gets {wrong:,} of {examples:,} {split} examples wrong; {which}", ""]
    teacher = all("teacher" in example for example in sample)
    header = ["text", "gold", "distilled student (probability %)", *(["teacher"] if teacher else [])]
    rows = [
        [
            cell(example["text"], TEXT_CHARACTERS),
            cell(example["gold"]),
            f"{cell(example['predicted'])} ({format_number(100 * example['probability'], 0)})",
            *([cell(example["teacher"])] if teacher else []),
        ]
        for example in sample
    ]
    return lines + table(header, rows)
