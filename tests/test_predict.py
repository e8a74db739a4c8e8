"""`bilstm-kd predict` and `load_classifier(...).predict` on a tiny exported student: a label and a score a row,
the input's columns passed through, empty texts left without a label, one text in Python giving one answer,
and not one TensorFlow line on stderr."""

import csv
import json

import numpy as np
import pytest
from conftest import bilstm_kd, tiny_exported_run

from bilstm_kd.classifier import Prediction, Predictions, load_classifier

TEXTS = ["Where is my card?", "refund please", "top up", "my card is up", "   ", "where is my refund"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_exported_run(tmp_path_factory.mktemp("tiny") / "run")


@pytest.fixture(scope="module")
def classifier(run):
    return load_classifier(run)


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(rows)
    return path


def test_one_string_gives_one_prediction_and_a_list_gives_a_list(classifier):
    one = classifier.predict("Where is my card?")
    assert isinstance(one, Prediction) and one.label in classifier.label_names
    many = classifier.predict(["Where is my card?", "refund please"])
    assert isinstance(many, Predictions) and len(many) == 2 and len(list(many)) == 2
    np.testing.assert_allclose(one.probabilities, many[0].probabilities, atol=1e-6)
    assert many[0].label == one.label and one.score == pytest.approx(one.probabilities.max())
    assert one.top(3)[0] == (one.label, pytest.approx(one.score)) and len(one.top(3)) == 3
    assert [score for _, score in one.top(3)] == sorted(one.probabilities.tolist(), reverse=True)
    assert len(classifier.predict([])) == 0


@pytest.mark.parametrize(
    "texts, message",
    [
        ([None], r"texts\[0\] is NoneType \(None\), not a string"),
        (["fine", 3], r"texts\[1\] is int \(3\), not a string"),
        (["fine", b"bytes"], r"texts\[1\] is bytes"),
        (b"bytes", "`texts` must be a string or a sequence of strings, received bytes"),
        (42, "`texts` must be a string or a sequence of strings, received int"),
    ],
)
def test_anything_but_strings_is_a_type_error_naming_where(classifier, texts, message):
    with pytest.raises(TypeError, match=message):
        classifier.predict(texts)


def test_rows_pass_through_with_a_label_and_a_score_and_empty_texts_get_none(run, classifier, tmp_path):
    rows = [("id", "text", "label")] + [(f"r{index}", text, "gold") for index, text in enumerate(TEXTS)]
    source = write_csv(tmp_path / "new.csv", rows)
    result = bilstm_kd("predict", f"--model={run}", f"--input={source}")
    assert result.returncode == 0, result.stderr
    # Not one line of TensorFlow's start-up: only ours.
    assert result.stderr.splitlines() == [
        "note: 1 of 6 texts are empty and have no label (rows 5)",
        "note: the input's column 'label' is written as 'input_label'",
    ]
    written = [json.loads(line) for line in result.stdout.splitlines()]
    expected = classifier.predict([text for text in TEXTS if text.strip()])
    answered = [row for row in written if row["label"] is not None]
    assert [row["id"] for row in written] == [f"r{index}" for index in range(6)]
    assert [row["text"] for row in written] == TEXTS  # a data file's values as they are
    assert all(list(row) == ["id", "text", "input_label", "label", "score"] for row in written)
    assert {row["input_label"] for row in written} == {"gold"}
    assert [row["label"] for row in answered] == expected.labels
    assert [row["score"] for row in answered] == [round(float(p.max()), 6) for p in expected.probabilities]
    assert written[4]["label"] is None and written[4]["score"] is None


def test_top_k_and_all_scores_in_csv_and_jsonl(run, classifier, tmp_path):
    source = write_csv(tmp_path / "new.csv", [("id", "message"), ("7", "Where is my card?"), ("8", "")])
    output = tmp_path / "out.csv"
    result = bilstm_kd("predict", f"--model={run}", f"--input={source}", "--text_column=message", f"--output={output}",
                             "--top_k=2", "--all_scores")  # fmt: skip
    assert result.returncode == 0, result.stderr
    with open(output, newline="", encoding="utf-8") as file:
        table = list(csv.reader(file))
    names = classifier.label_names
    assert table[0] == ["id", "message", "label", "score", "label_2", "score_2", *(f"p_{name}" for name in names)]
    best = classifier.predict("Where is my card?")
    (first, first_score), (second, second_score) = best.top(2)
    assert table[1] == [
        "7", "Where is my card?", first, f"{first_score:.6f}", second, f"{second_score:.6f}",
        *(f"{p:.6f}" for p in best.probabilities),
    ]  # fmt: skip
    assert table[2] == ["8", "", *[""] * (4 + len(names))]

    lines = bilstm_kd("predict", f"--model={run}", "--top_k=3", "--all_scores", "--input=-")
    assert lines.returncode == 0 and lines.stdout == "" and lines.stderr == ""  # empty stdin: no rows
    text_file = tmp_path / "texts.txt"
    text_file.write_text("Where is my card?\n", encoding="utf-8")
    jsonl = bilstm_kd("predict", f"--model={run}", f"--input={text_file}", "--top_k=3", "--all_scores")
    row = json.loads(jsonl.stdout)
    assert row["label"] == first and [entry["label"] for entry in row["top_k"]] == [label for label, _ in best.top(3)]
    assert row["scores"] == {name: round(float(p), 6) for name, p in zip(names, best.probabilities)}


def test_the_export_stage_writes_labels_txt_whichever_exports_are_chosen(tmp_path):
    from types import SimpleNamespace

    from conftest import tiny_student

    from bilstm_kd.config import ExportConfig
    from bilstm_kd.data.tasks import Task
    from bilstm_kd.pipeline import export_stage

    student_path = tmp_path / "student.keras"
    tiny_student(12, 3).save(student_path)
    no_exports = ExportConfig(export_saved_model=False, export_tflite=False, export_mediapipe=False)
    run = SimpleNamespace(
        config=SimpleNamespace(export=no_exports),
        paths=SimpleNamespace(export=str(tmp_path / "export")),
        task=Task("t", ("b", "a", "c")),
    )
    export_stage.export(run, {"distill": {"student_path": str(student_path)}})
    assert (tmp_path / "export" / "labels.txt").read_text(encoding="utf-8") == "b\na\nc\n"
