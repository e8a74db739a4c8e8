"""`bilstm-kd evaluate`: a short table by default, everything with --json, and macro-F1 over the classes present
in the gold labels or the predictions."""

import csv
import json

import numpy as np
import pytest
from conftest import bilstm_kd, tiny_exported_run

from bilstm_kd import scoring
from bilstm_kd.classifier import Predictions, load_classifier
from bilstm_kd.data.readers import read_examples


class AnswerBook:
    """A classifier that answers from a dict: text -> class name."""

    path = "answer-book"
    is_pair = False

    def __init__(self, label_names, answers):
        self.label_names, self.answers = tuple(label_names), answers

    def predict(self, texts):
        ids = np.array([self.label_names.index(self.answers[text]) for text in texts])
        labels = [self.answers[text] for text in texts]
        return Predictions(labels, ids, np.eye(len(self.label_names))[ids], self.label_names)


class Labelled:
    """The shape of `data.readers.Examples`."""

    def __init__(self, texts, labels, origin="test.csv"):
        self.texts, self.labels, self.origin = (np.array(texts, dtype=object),), np.array(labels), origin

    def __len__(self):
        return len(self.labels)


def test_macro_f1_is_over_the_classes_present_in_gold_or_predictions_and_absent_ones_have_no_f1():
    # Gold a, a, b, b; predicted a, b, b, b. c and d are the model's classes but in neither.
    book = AnswerBook("abcd", {"1": "a", "2": "b", "3": "b", "4": "b"})
    results = scoring.evaluate(book, Labelled(["1", "2", "3", "4"], [0, 0, 1, 1]))
    f1_a, f1_b = 2 * 1 / (1 + 2), 2 * 2 / (3 + 2)
    assert results["macro_f1"] == pytest.approx((f1_a + f1_b) / 2)  # not (f1_a + f1_b) / 4
    assert results["macro_f1_over"] == "the classes present in the gold labels or the predictions: 2 of 4"
    assert results["absent_classes"] == ["c", "d"]
    assert results["per_class"]["c"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert results["per_class"]["a"]["f1"] == pytest.approx(f1_a) and results["accuracy"] == 0.75
    # A class only predicted counts: its F1 is 0 and it is present.
    predicted_only = scoring.evaluate(AnswerBook("abc", {"1": "a", "2": "c"}), Labelled(["1", "2"], [0, 0]))
    assert predicted_only["macro_f1"] == pytest.approx((2 / 3 + 0) / 2) and predicted_only["absent_classes"] == ["b"]


def test_the_table_shows_accuracy_macro_f1_the_worst_classes_and_the_most_confused_pairs():
    names = [f"intent_{index}" for index in range(8)]
    # 8 classes, 3 examples each: class k is right on 3 - min(k, 3) of them, the rest go to class k + 1 (mod 8).
    texts, gold, answers = [], [], {}
    for label in range(8):
        for example in range(3):
            text = f"{label}-{example}"
            texts.append(text)
            gold.append(label)
            answers[text] = names[label] if example < 3 - min(label, 3) else names[(label + 1) % 8]
    results = scoring.evaluate(AnswerBook(names, answers), Labelled(texts, gold))
    lines = scoring.summary(results).splitlines()
    assert lines[0] == "answer-book on test.csv: 24 examples, 8 classes"
    assert lines[2] == f"  accuracy   {100 * results['accuracy']:.1f}%"
    over = "over the classes present in the gold labels or the predictions: 8 of 8"
    assert lines[3] == f"  macro-F1   {100 * results['macro_f1']:.1f}%  {over}"
    worst_at = lines.index(next(line for line in lines if line.startswith("Worst classes by F1 (%)")))
    worst = [line.split() for line in lines[worst_at + 1 : worst_at + 6]]
    by_f1 = sorted(names, key=lambda name: results["per_class"][name]["f1"])
    assert [row[0] for row in worst] == by_f1[:5] and worst[0][0] in names[3:]
    assert all(float(row[1]) == round(100 * results["per_class"][row[0]]["f1"], 1) for row in worst)
    confused_at = lines.index(next(line for line in lines if line.startswith("Most confused (gold -> predicted)")))
    confused = [line.split() for line in lines[confused_at + 1 : confused_at + 6]]
    assert all(row[1] == "->" for row in confused)
    assert [int(row[3]) for row in confused] == [3, 3, 3, 3, 3]  # classes 3 to 7: all three go to the next class
    assert {(row[0], row[2]) for row in confused} <= {(names[k], names[(k + 1) % 8]) for k in range(3, 8)}
    assert lines[-1] == "--json prints every class's scores and the confusion matrix."
    assert len(lines) < 25


def test_the_evaluate_command_prints_the_table_and_json_on_request(tmp_path):
    run = tiny_exported_run(tmp_path / "run")
    data = tmp_path / "test.csv"
    rows = [("Where is my card?", "card_arrival"), ("refund please", "refund"), ("top up", "top_up"),
            ("my card is up", "card_arrival"), ("where is my refund", "refund")]  # fmt: skip
    with open(data, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("text", "label"), *rows])
    table = bilstm_kd("evaluate", f"--model={run}", f"--data={data}")
    assert table.returncode == 0 and table.stderr == "", table.stderr
    classifier = load_classifier(run)
    expected = scoring.evaluate(classifier, read_examples(str(data), ("text",), "label", classifier.label_names))
    assert table.stdout == scoring.summary(expected) + "\n"
    assert table.stdout.startswith(f"{run}/export/saved_model on {data}: 5 examples, 3 classes\n")
    full = bilstm_kd("evaluate", f"--model={run}", f"--data={data}", "--json", f"--output={tmp_path / 'e.json'}")
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout) == json.loads((tmp_path / "e.json").read_text()) == json.loads(json.dumps(expected))
