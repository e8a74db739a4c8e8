"""Property-based: for any Unicode text, the ids the student trained on are the ids every runtime computes: the
SavedModel (strings in), the TFLite path (vocab.txt read back) and MediaPipe's TextClassifier (its own RE2
tokenizer and vocabulary). A bounded sample, a fixed seed: the runtimes cost milliseconds a sentence."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import TRICKY_CHARACTERS, user_text
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bilstm_kd.data.tasks import Task
from bilstm_kd.export import mediapipe as mediapipe_export
from bilstm_kd.export.saved_model import export_saved_model, serve
from bilstm_kd.export.tflite import export_tflite, tflite_predict_texts
from bilstm_kd.student.models import BiLSTMClassifier
from bilstm_kd.text.vocab import Vocabulary, WordTokenizer

LENGTH = 12
WORDS = ["good", "film", "café", "naïve", "Über", "שלום", "it's", "don't", "charge", "$1", "😀", "!!!", "1,000"]
CORPUS = [" ".join(WORDS), "an extra $1\u00a0 charge", TRICKY_CHARACTERS]
TASK = Task("tricky", ("a", "b", "c"), False, ("accuracy",))
RUNTIMES = settings(max_examples=12, derandomize=True, database=None, deadline=None)


def sentences():
    """Texts mostly of vocabulary words (so ids are not all unknown), glued by any characters."""
    glue = st.one_of(st.sampled_from(list(TRICKY_CHARACTERS)), user_text(max_size=8))
    words = st.lists(st.tuples(st.sampled_from(WORDS), glue), max_size=10)
    return words.map(lambda pairs: "".join(word + between for word, between in pairs))


def random_student(vocabulary_size):
    student = BiLSTMClassifier(vocabulary_size, 4, TASK.num_classes, lstm_units=3, hidden_units=5)
    rng = np.random.default_rng(0)
    for variable in student.weights:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype("float32"))
    return student


@pytest.fixture(scope="module", params=["glue", "regex"])
def exported(request, tmp_path_factory):
    tokenizer = request.param
    vocabulary = Vocabulary.from_texts(CORPUS, tokenizer=tokenizer)
    student = random_student(len(vocabulary))
    directory = tmp_path_factory.mktemp(f"export_{tokenizer}")
    saved_model = export_saved_model(student, vocabulary, TASK, LENGTH, directory / "saved_model", tokenizer=tokenizer)
    tflite = export_tflite(student, TASK, vocabulary, LENGTH, directory / "student.tflite", tokenizer=tokenizer)
    phone = None
    if tokenizer == "regex":
        phone = mediapipe_export.export_mediapipe(student, TASK, vocabulary, LENGTH, directory / "phone.tflite")
    training_ids = WordTokenizer(vocabulary.tokens, LENGTH, pad_to_max_length=True, tokenizer=tokenizer)
    return {
        "student": student,
        "ids": lambda texts: training_ids(tf.constant(texts)).numpy(),
        "saved_model": tf.saved_model.load(saved_model),
        "tflite": tflite,
        "phone": phone,
    }


@RUNTIMES
@given(texts=st.lists(sentences(), min_size=1, max_size=6))
@example(texts=["an extra $1\u00a0 charge", "", "\u200b\ufeff", "CAFE\u0301 Naı\u0308ve", "😀 " * 40])
def test_every_runtime_computes_the_training_ids(exported, texts):
    ids = exported["ids"](texts)
    expected = tf.nn.softmax(exported["student"](ids, training=False)).numpy()
    np.testing.assert_allclose(serve(exported["saved_model"], texts)["probabilities"], expected, atol=1e-5)
    tflite_logits = tflite_predict_texts(exported["tflite"], texts)
    np.testing.assert_allclose(tf.nn.softmax(tflite_logits).numpy(), expected, atol=1e-5)
    if exported["phone"] is not None:
        # MediaPipe reads a text up to its first NUL (a C string): see the test below.
        kept = [row for row, text in enumerate(texts) if "\x00" not in text]
        runtime = mediapipe_export.classify_with_mediapipe(exported["phone"], [texts[row] for row in kept], 3)
        np.testing.assert_allclose(runtime, expected[kept], atol=1e-5)


@pytest.mark.parametrize("exported", ["regex"], indirect=True)  # the phone file is written for the regex tokenizer
def test_mediapipe_reads_a_text_up_to_its_first_nul(exported):
    runtime = mediapipe_export.classify_with_mediapipe(exported["phone"], ["good\x00film café", "good"], 3)
    np.testing.assert_allclose(runtime[0], runtime[1], atol=1e-7)


def test_the_sample_has_teeth(exported):
    """The texts above hit known words: different texts score differently, so equal scores mean equal ids."""
    ids = exported["ids"](["good film café", "שלום it's 😀", "zzz"])
    assert len({tuple(row) for row in ids}) == 3 and (ids[:2] > 2).any()
