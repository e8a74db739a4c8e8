"""What the report calls models and metrics, and how it writes numbers and tables in Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MODEL_ORDER = ("teacher", "student", "baseline", "tfidf", "student_tflite", "student_mediapipe")
MODEL_NAMES = {
    "teacher": "BERT teacher",
    "student": "distilled BiLSTM",
    "baseline": "BiLSTM, no teacher",
    "tfidf": "TF-IDF + logistic regression",
    "student_tflite": "distilled BiLSTM, TFLite",
    "student_mediapipe": "distilled BiLSTM, MediaPipe TextClassifier",
}
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "f1": "F1"}


def model_colour(name: str) -> str:
    """One matplotlib colour per model, the same in every figure."""
    return f"C{MODEL_ORDER.index(name)}"


def format_number(value: Any, digits: int = 1) -> str:
    """A number with thousands separators (floats to `digits` decimals); "-" for None."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percent(share: float | None) -> str:
    """A share (0-1) as a percentage to one decimal; "-" for None."""
    return format_number(None if share is None else 100 * share)


def cell(text: Any, most: int = 0) -> str:
    """Text that stays inside one Markdown table cell (pipes escaped, one line), clipped to `most` characters."""
    text = " ".join(str(text).split())
    if most and len(text) > most:
        text = text[: most - 1] + "…"
    return text.replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines; cells are written as given (format them first)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
