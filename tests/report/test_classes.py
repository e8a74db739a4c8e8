"""The report's per-class sections at 2 and at 100 classes: worst first, shortened, the CSV files beside it, the
most confused pairs, the misclassified sample and the heat map."""

import csv
import pathlib

import numpy as np
import pytest

from bilstm_kd.report.calibration import reliability
from bilstm_kd.report.classes import (
    WORST_CLASSES,
    confused_pairs,
    misclassified_sample,
    worst_first,
    write_class_files,
)
from bilstm_kd.report.report import render_markdown, write_report


def per_class_scores(confusion, names):
    """Precision, recall, F1 and support of each class of a confusion matrix (rows gold), as the report holds them."""
    confusion = np.asarray(confusion, dtype=float)
    right = np.diag(confusion)
    precision = np.divide(right, confusion.sum(axis=0), out=np.zeros_like(right), where=confusion.sum(axis=0) > 0)
    recall = np.divide(right, confusion.sum(axis=1), out=np.zeros_like(right), where=confusion.sum(axis=1) > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(right), where=both > 0)
    return {
        name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, confusion.sum(axis=1))
    }


def class_report(classes):
    """A report of a run with `classes` classes, 20 dev examples each: class i loses i % 7 of them to class
    i + 1, so the worst classes are those with i % 7 == 6 and the largest confusions are 6 examples."""
    names = [f"intent_{index:03d}" for index in range(classes)]
    confusion = np.zeros((classes, classes), dtype=int)
    for index in range(classes):
        lost = index % 7 if classes > 2 else index
        confusion[index, index] = 20 - lost
        confusion[index, (index + 1) % classes] += lost
    labels = np.repeat(np.arange(classes), 20)
    probabilities = np.full((len(labels), classes), 0.1 / (classes - 1))
    probabilities[np.arange(len(labels)), labels] = 0.9
    probabilities[::10] = np.roll(probabilities[::10], 1, axis=1)  # every tenth answer wrong, at 90%
    details = {"per_class": per_class_scores(confusion, names), "confusion": confusion.tolist()}
    texts = ([f"text number {index} | with a pipe" for index in range(len(labels))],)
    return {
        "task": "intents",
        "title": "intents/train.csv",
        "metrics": ["accuracy", "macro_f1"],
        "classes": names,
        "models": {
            "student": {
                "dev": {"dev": {"accuracy": 0.9, "macro_f1": 0.9}},
                "classes": {"dev": details},
                "misclassified": {"split": "dev", **misclassified_sample(texts, labels, probabilities, names)},
            }
        },
        "calibration": {"split": "dev", "models": {"student": reliability(probabilities, labels)}},
        "stages": {"report": {"status": "ran", "seconds": 1.0}},
    }


def section(markdown, title):
    """The lines of one `## ` section of report.md."""
    lines = markdown.splitlines()
    start = lines.index(title)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start + 1 : end]


def table_rows(lines, first_header):
    """The cells of the rows of the table whose header starts with `first_header`."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_worst_first_by_f1_then_support_and_classes_without_examples_last():
    per_class = {
        "fine": {"f1": 0.9, "support": 5},
        "absent": {"f1": 0.0, "support": 0},
        "bad_few": {"f1": 0.4, "support": 3},
        "bad_many": {"f1": 0.4, "support": 30},
        "worst": {"f1": 0.1, "support": 8},
    }
    assert worst_first(per_class) == ["worst", "bad_many", "bad_few", "fine", "absent"]


def test_confused_pairs_largest_first_with_the_share_of_the_gold_class():
    confusion = [[5, 3, 0], [1, 8, 1], [4, 0, 0]]
    pairs = confused_pairs(confusion, ["a", "b", "c"], most=3)
    assert [(pair["gold"], pair["predicted"], pair["count"]) for pair in pairs] == [
        ("c", "a", 4),
        ("a", "b", 3),
        ("b", "a", 1),
    ]
    assert pairs[0]["share"] == 1.0 and pairs[1]["share"] == pytest.approx(3 / 8)
    assert confused_pairs([[3, 0], [0, 2]], ["a", "b"]) == []


def test_misclassified_sample_draws_only_mistakes_in_data_order_with_the_teacher_beside():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 1, 1])  # wrong: 1, 2 and 4
    texts = (["a", "b", "c", "d", "e"], ["A", "B", "C", "D", "E"])
    result = misclassified_sample(texts, labels, probabilities, ["neg", "pos"], np.array([0, 0, 1, 1, 0]), size=2)
    assert (result["wrong"], result["examples"], len(result["sample"])) == (3, 5, 2)
    assert {example["text"] for example in result["sample"]} <= {"b [SEP] B", "c [SEP] C", "e [SEP] E"}
    indices = ["abcde".index(example["text"][0]) for example in result["sample"]]
    assert indices == sorted(indices)
    everything = misclassified_sample(texts, labels, probabilities, ["neg", "pos"], np.array([0, 0, 1, 1, 0]))
    assert everything["sample"][0] == {
        "text": "b [SEP] B",
        "gold": "neg",
        "predicted": "pos",
        "probability": 0.8,
        "teacher": "neg",
    }
    assert misclassified_sample(texts, labels, probabilities, ["neg", "pos"]) == misclassified_sample(
        texts, labels, probabilities, ["neg", "pos"]
    )  # seeded


def test_csv_files_hold_every_class_worst_first_and_the_whole_matrix(tmp_path):
    names = ["good", "bad", "middling"]
    confusion = [[10, 0, 0], [3, 1, 2], [0, 1, 4]]
    details = {"dev": {"per_class": per_class_scores(confusion, names), "confusion": confusion}}
    paths = write_class_files(details, names, str(tmp_path))
    assert [pathlib.Path(path).name for path in paths] == ["report_classes_dev.csv", "report_confusion_dev.csv"]
    with open(tmp_path / "report_classes_dev.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["class", "precision", "recall", "f1", "support"]
    # bad: precision 1/2, recall 1/6, F1 0.25; middling: 4/6, 4/5, 0.7273; good: 10/13, 1, 0.8696
    assert rows[1:] == [
        ["bad", "0.5", "0.1667", "0.25", "6"],
        ["middling", "0.6667", "0.8", "0.7273", "5"],
        ["good", "0.7692", "1.0", "0.8696", "10"],
    ]
    with open(tmp_path / "report_confusion_dev.csv", newline="") as file:
        matrix = list(csv.reader(file))
    assert matrix == [
        ["gold \\ predicted", "good", "bad", "middling"],
        ["good", "10", "0", "0"],
        ["bad", "3", "1", "2"],
        ["middling", "0", "1", "4"],
    ]


def test_sections_at_two_classes():
    markdown = render_markdown(class_report(2))
    assert markdown.startswith("# Distillation report: intents/train.csv\n")
    classes = section(markdown, "## Distilled student per class: dev")
    assert "2 classes, worst first by F1 (also in [report_classes_dev.csv](report_classes_dev.csv))." in classes
    # class 1 loses one of its 20 to class 0: recall 95%, and class 0's precision 20/21
    assert table_rows(classes, "class") == [
        ["intent_001", "100.0", "95.0", "97.4", "20"],
        ["intent_000", "95.2", "100.0", "97.6", "20"],
    ]
    assert table_rows(classes, "gold \\ predicted") == [["intent_000", "20", "0"], ["intent_001", "1", "19"]]
    assert not any(line.startswith("Most confused") for line in classes)  # the matrix says it
    mistakes = section(markdown, "## Misclassified examples: dev")
    assert "The distilled student gets 4 of 40 dev examples wrong; all of them, in data order:" in mistakes
    assert table_rows(mistakes, "text")[0] == ["text number 0 \\| with a pipe", "intent_000", "intent_001 (90)"]
    assert "| distilled BiLSTM | 0.0 | 90.0 | 90.0 | calibrated on average |" in section(
        markdown, "## Calibration: dev"
    )


def test_sections_at_a_hundred_classes(tmp_path):
    paths = write_report(class_report(100), str(tmp_path))
    markdown = pathlib.Path(paths["md"]).read_text()
    classes = section(markdown, "## Distilled student per class: dev")
    where = "[report_classes_dev.csv](report_classes_dev.csv)"
    assert f"100 classes, worst first by F1; the 10 worst below, all 100 in {where}." in classes
    rows = table_rows(classes, "class")
    assert len(rows) == WORST_CLASSES
    f1 = [float(row[3]) for row in rows]
    assert f1 == sorted(f1)
    # The worst lose 6 of 20 (recall 70%) and get 5 of class i - 1's: intent_006, 013, ... by F1 then name.
    assert rows[0][0] == "intent_006" and rows[0][2] == "70.0"
    assert not any(line.startswith("| gold \\ predicted") for line in classes)  # too wide for Markdown
    assert any("[report_confusion.png](report_confusion.png)" in line for line in classes)
    pairs = table_rows(classes, "gold")
    assert len(pairs) == 10 and pairs[0] == ["intent_006", "intent_007", "6", "30.0"]
    assert all(int(row[2]) == 6 for row in pairs)
    mistakes = section(markdown, "## Misclassified examples: dev")
    assert "gets 200 of 2,000 dev examples wrong; 10 of them, drawn at random, in data order:" in " ".join(mistakes)
    assert len(table_rows(mistakes, "text")) == 10
    assert len(markdown) < 12_000  # a first screen, not 100 x 100 cells
    with open(tmp_path / "report_classes_dev.csv", newline="") as file:
        assert len(list(csv.reader(file))) == 101
    with open(tmp_path / "report_confusion_dev.csv", newline="") as file:
        assert [len(row) for row in csv.reader(file)] == [101] * 101
    for figure in ("confusion", "calibration"):
        assert pathlib.Path(paths[figure]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
