"""A whole run on a file whose texts hold every kind of character users' files hold: it finishes, writes all three
exports, and MediaPipe's runtime agrees with the Keras student on every dev and test text."""

import csv
import json
import pathlib
import subprocess
import sys

import keras_hub
import pytest
from conftest import TINY_STUDENT_FLAGS, tiny_bert_backbone

from bilstm_kd.text.vocab import Vocabulary, is_token

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
# Each text holds characters that broke or could break a run: Unicode spaces, line separators, zero-width and
# format characters, a BOM inside the field, NFC and NFD accents, right-to-left text, controls, emoji only,
# punctuation only, a very long line.
TRICKY = [
    "an extra $1\u00a0 charge",
    "narrow\u202fno-break and\u2009thin\u3000ideographic spaces",
    "line\u2028separator and\u2029paragraph",
    "zero\u200bwidth jo\u200din\u200cers",
    "\ufeffbyte order mark inside a field",
    "café crème (NFC)",
    "cafe\u0301 cre\u0300me (NFD)",
    "\u200fשלום עולם\u200e and مرحبا",
    "bell\x07 escape\x1b delete\x7f and NUL\x00 inside",
    "😀👍🏽👨\u200d👩\u200d👧 🇫🇷",
    "?!... --- ***",
    "long " * 400,
]
LABELS = ["good", "bad", "meh"]


@pytest.fixture(scope="module")
def tricky_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("any_text")
    rows = [(text, LABELS[index % 3]) for index, text in enumerate(TRICKY * 4)]
    for name, part in (("train.csv", rows), ("dev.csv", rows[: len(TRICKY)]), ("test.csv", rows[::3])):
        with open(root / name, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows([("text", "label"), *part])
    preset = root / "teacher"
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "long", "cafe"]
    tiny_bert_backbone(len(vocabulary)).save_to_preset(str(preset))
    keras_hub.models.BertTokenizer(vocabulary, lowercase=True).save_to_preset(str(preset))
    workdir = root / "run"
    flags = [
        *(f"--{split}_file={root / split}.csv" for split in ("train", "dev", "test")),
        "--text_column=text",
        "--label_column=label",
        f"--workdir={workdir}",
        f"--teacher={preset}",
        "--teacher_epochs=1",
        "--teacher_max_length=16",
        "--n_iter=1",
        *TINY_STUDENT_FLAGS,
        "--epochs=1",
        "--tokenizer=regex",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bilstm_kd.main", *flags], capture_output=True, text=True, cwd=REPOSITORY, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_the_run_exports_all_three_files_and_mediapipe_agrees_on_every_text(tricky_run):
    export = json.loads((tricky_run / "stages" / "export.json").read_text())["outputs"]
    for name in ("saved_model", "student.tflite", "student_mediapipe.tflite", "vocab.txt", "labels.txt"):
        assert (tricky_run / "export" / name).exists(), name
    verification = export["mediapipe"]["verification"]
    assert verification["examples"] == len(TRICKY) and verification["cut_at_nul"] == 1
    assert verification["label_agreement"] == 1.0 and verification["max_abs_diff"] <= 1e-5
    assert export["saved_model"]["verification"]["label_agreement"] == 1.0
    assert export["tflite"]["verification"]["label_agreement"] == 1.0


def test_every_vocabulary_file_of_the_run_reads_back(tricky_run):
    vocabulary = Vocabulary.load(tricky_run / "export" / "vocab.txt")
    assert Vocabulary.load(tricky_run / "student" / "vocab.txt") == vocabulary
    assert {"café", "שלום", "charge"} <= set(vocabulary.tokens)
    runtime = (tricky_run / "export" / "vocab_mediapipe.txt").read_text(encoding="utf-8").split("\n")[:-1]
    spellings = [line.rsplit(" ", 1)[0] for line in runtime]
    assert all(is_token(spelling) for spelling in spellings) and "cafe\u0301" in spellings
