"""A user's own multi-class CSV end to end, as a new user runs it: main, then predict and evaluate on both
exports, and the same raw text giving the same answer in training, the SavedModel and the TFLite file."""

import csv
import json
import pathlib
import subprocess
import sys

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_STUDENT_FLAGS, tiny_bert_backbone

from bilstm_kd.classifier import load_classifier
from bilstm_kd.data.tasks import Task
from bilstm_kd.distill.batches import example_batches
from bilstm_kd.distill.evaluation import predict_logits
from bilstm_kd.student.models import load_student
from bilstm_kd.text.vocab import Vocabulary, WordTokenizer

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
INTENTS = {
    "card_arrival": ["Where is my card?", "My card hasn't arrived!", "When will the card come?", "card not here yet"],
    "top_up": ["Top-up failed :(", "How do I top up?", "My top up didn't work.", "top up with a card?"],
    "refund": ["I want a refund!!!", "Refund me, please.", "How long does a refund take?", "refund not received"],
}
RAW = [
    "WHERE IS MY CARD???",
    "Can't top-up... why?",
    "Refund 😀 please, see https://bank.example/refund",
    "café crème refund",
    "card " * 40,  # longer than max_length
    "",
]


def python(module, *argv, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        timeout=600,
        input=stdin,
    )


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["message", "intent"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("user_data")
    rows = [(text, intent) for intent, texts in INTENTS.items() for text in texts]
    train = write_csv(root / "train.csv", rows * 3)
    test = write_csv(root / "test.csv", rows[::2])
    words = sorted({word for text, _ in rows for word in text.lower().replace("?", " ").split()})
    preset = root / "teacher"
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tiny_bert_backbone(len(vocabulary)).save_to_preset(str(preset))
    keras_hub.models.BertTokenizer(vocabulary, lowercase=True).save_to_preset(str(preset))
    workdir = root / "run"
    result = python(
        "bilstm_kd.main",
        f"--train_file={train}",
        f"--test_file={test}",
        "--text_column=message",
        "--label_column=intent",
        "--dev_fraction=0.25",
        f"--workdir={workdir}",
        f"--teacher={preset}",
        "--teacher_epochs=1",
        "--teacher_batch_size=8",
        "--teacher_max_length=16",
        "--n_iter=2",
        *TINY_STUDENT_FLAGS,
        "--epochs=2",
        "--batch_size=8",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root, workdir


def test_report_names_the_classes_and_scores_test(trained_run):
    _, workdir = trained_run
    report = json.loads((workdir / "report.json").read_text())
    assert report["classes"] == sorted(INTENTS) and report["metrics"] == ["accuracy", "macro_f1"]
    for model in ("teacher", "student", "baseline", "student_tflite"):
        assert set(report["models"][model]["test"]["test"]) >= {"accuracy", "macro_f1"}, model
    classes = report["models"]["student"]["classes"]
    assert np.sum(classes["test"]["confusion"]) == 6 and set(classes["dev"]["per_class"]) == set(INTENTS)
    assert "## Distilled student per class: test" in (workdir / "report.md").read_text()
    assert (workdir / "report_confusion.png").stat().st_size > 0
    split = json.loads((workdir / "data_split.json").read_text())
    assert len(split["dev_rows"]) == 9  # a quarter of each class' 12 rows
    assert (workdir / "export" / "labels.txt").read_text().split() == sorted(INTENTS)


def test_raw_text_gets_the_same_answer_in_training_saved_model_and_tflite(trained_run):
    _, workdir = trained_run
    student = load_student(str(workdir / "student" / "distilled" / "student.keras"))
    vocabulary = Vocabulary.load(workdir / "student" / "vocab.txt")
    chosen = json.loads((workdir / "config.json").read_text())["student"]["tokenizer"]  # auto: regex, one text
    tokenizer = WordTokenizer(vocabulary.tokens, max_length=8, tokenizer=chosen)
    labels = np.zeros(len(RAW), np.int32)
    batches = example_batches(tf.data.Dataset.from_tensor_slices((RAW, labels)), tokenizer, False, 4, bucket=False)
    training = tf.nn.softmax(predict_logits(student, batches)).numpy()
    for kind in ("saved_model", "tflite"):
        predictions = load_classifier(workdir, kind).predict(RAW)
        np.testing.assert_allclose(predictions.probabilities, training, atol=1e-5, err_msg=kind)
        assert predictions.label_names == tuple(sorted(INTENTS))
        assert predictions.labels == [predictions.label_names[i] for i in training.argmax(-1)]


@pytest.mark.parametrize("kind", ["saved_model", "tflite"])
def test_predict_and_evaluate_commands(trained_run, kind):
    root, workdir = trained_run
    new = root / "new.csv"
    write_csv(new, [(text, "refund") for text in RAW[:4]])
    output = root / f"predictions_{kind}.csv"
    result = python("bilstm_kd.predict", f"--model={workdir}", f"--kind={kind}", f"--input={new}",
                    "--text_column=message", f"--output={output}", "--all_scores")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    with open(output, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    expected = load_classifier(workdir, kind).predict(RAW[:4])
    assert [row["message"] for row in rows] == RAW[:4] and [row["label"] for row in rows] == expected.labels
    assert {row["intent"] for row in rows} == {"refund"}  # the input's other columns pass through
    assert float(rows[0][f"p_{expected.label_names[0]}"]) == pytest.approx(expected.probabilities[0, 0], abs=1e-5)

    lines = python("bilstm_kd.predict", f"--model={workdir}", f"--kind={kind}", stdin="Where is my card?\nrefund\n")
    assert lines.returncode == 0, lines.stderr[-2000:]
    assert [json.loads(line)["label"] for line in lines.stdout.splitlines()] == (
        load_classifier(workdir, kind).predict(["Where is my card?", "refund"]).labels
    )

    evaluated = python("bilstm_kd.evaluate", f"--model={workdir}", f"--kind={kind}", f"--data={root / 'test.csv'}",
                       "--text_column=message", "--label_column=intent", "--json")  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    scores = json.loads(evaluated.stdout)
    with open(root / "test.csv", newline="", encoding="utf-8") as file:
        test_rows = list(csv.DictReader(file))
    names = tuple(sorted(INTENTS))
    predicted = load_classifier(workdir, kind).predict([row["message"] for row in test_rows]).label_ids
    gold = np.array([names.index(row["intent"]) for row in test_rows])
    expected_scores = Task("t", names, metrics=("accuracy", "macro_f1")).evaluate(gold, predicted)
    assert scores["accuracy"] == pytest.approx(expected_scores["accuracy"])
    assert scores["macro_f1"] == pytest.approx(expected_scores["macro_f1"])
    assert scores["examples"] == 6 and len(scores["confusion"]) == 3


def test_user_errors_are_one_line_and_status_2(trained_run, tmp_path):
    _, workdir = trained_run
    bad = write_csv(tmp_path / "bad.csv", [("Where is my card?", "card_arrival"), ("hello", "greeting")])
    evaluated = python("bilstm_kd.evaluate", f"--model={workdir}", f"--data={bad}", "--text_column=message",
                       "--label_column=intent")  # fmt: skip
    assert evaluated.returncode == 2
    assert evaluated.stderr.strip().splitlines()[-1] == (
        f"error: {bad}, line 3: label 'greeting' is not among the model's labels (card_arrival, refund, top_up)"
    )
    assert "Traceback" not in evaluated.stderr
    missing = python("bilstm_kd.main", f"--train_file={bad}", "--text_column=text", "--label_column=intent",
                     f"--workdir={tmp_path / 'run'}")  # fmt: skip
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"error: {bad} has no column 'text' (--text_column); its columns are 'message', 'intent'" in missing.stderr
    no_model = python("bilstm_kd.predict", f"--model={tmp_path}", stdin="hi\n")
    assert no_model.returncode == 2 and "No exported saved_model, tflite or mediapipe model at" in no_model.stderr


def test_the_tfidf_row_is_scored_on_the_students_own_splits(trained_run):
    import joblib

    from bilstm_kd.baselines import linear
    from bilstm_kd.data.readers import read_examples

    root, workdir = trained_run
    report = json.loads((workdir / "report.json").read_text())
    row = report["models"]["tfidf"]
    model = joblib.load(workdir / "tfidf" / "model.joblib")
    labels = report["classes"]
    train = read_examples(str(root / "train.csv"), ("message",), "intent", labels)
    held_out = json.loads((workdir / "data_split.json").read_text())["dev_rows"]
    dev = train.select(np.asarray(held_out))  # the rows the students were selected on
    test = read_examples(str(root / "test.csv"), ("message",), "intent", labels)
    for kind, split, examples in (("dev", "dev", dev), ("test", "test", test)):
        accuracy = float(np.mean(linear.predict(model, examples.texts) == examples.labels))
        assert row[kind][split]["accuracy"] == pytest.approx(accuracy), kind
        assert set(report["metrics"]) <= row[kind][split].keys()
    # Fitted on the training rows the students saw: it knows each of them (C=10 on 27 short rows).
    kept = np.setdiff1d(np.arange(len(train)), held_out)
    assert np.mean(linear.predict(model, train.select(kept).texts) == train.labels[kept]) == 1.0
    assert report["summary"] and "TF-IDF + logistic regression" in " ".join(report["summary"])
