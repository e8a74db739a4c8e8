"""SavedModel (strings in) and TFLite (ids in, builtin ops only) exports, reloaded and compared with Keras."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_student

from bilstm_kd.data.tasks import get_task
from bilstm_kd.export.saved_model import export_saved_model, saved_model_predict, verify_saved_model
from bilstm_kd.export.tflite import export_tflite, metadata_path, tflite_predict, tflite_predict_texts, verify_tflite
from bilstm_kd.student.models import BiLSTMClassifier
from bilstm_kd.text.vocab import RESERVED, TOKENIZATION_RULES, Vocabulary, WordTokenizer

VOCABULARY = Vocabulary((*RESERVED, "good", "bad", "film", "the", "plot", "."))
MAX_LENGTH = 8
TEXTS = ["The good film.", "", "bad " * 100, "the [MASK] plot", "unknown words only", "good good bad film ."]
TASKS = {"single": "sst2", "pair": "mnli"}


def student_of(kind):
    return tiny_student(len(VOCABULARY), 3, pair=True) if kind == "pair" else tiny_student(len(VOCABULARY))


def text_inputs(kind):
    return (TEXTS, TEXTS[::-1]) if kind == "pair" else TEXTS


@pytest.mark.parametrize("kind", ["single", "pair"])
def test_saved_model_matches_the_keras_student_at_batch_sizes_1_and_37(kind, tmp_path):
    student = student_of(kind)
    path = export_saved_model(student, VOCABULARY, get_task(TASKS[kind]), MAX_LENGTH, tmp_path / "saved_model")
    report = verify_saved_model(path, student, VOCABULARY, MAX_LENGTH, text_inputs(kind), batch_sizes=(1, 37))
    assert report["max_abs_diff"] <= 1e-5
    assert report["label_agreement"] == 1.0 and report["examples"] == 38

    # Independent of verify_saved_model: reload, run raw strings, compare with the Keras student by hand.
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) >= {"serve", "serving_default"}
    outputs = saved_model_predict(path, text_inputs(kind))
    tokenizer = WordTokenizer(VOCABULARY.tokens, MAX_LENGTH)
    columns = text_inputs(kind) if kind == "pair" else (TEXTS,)
    ids = tuple(tokenizer(tf.constant(column)) for column in columns)
    expected = tf.nn.softmax(student(ids if kind == "pair" else ids[0])).numpy()
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["label"], expected.argmax(-1))
    label_names = np.array(get_task(TASKS[kind]).label_names, dtype=object)[expected.argmax(-1)]
    assert [name.decode() for name in outputs["label_name"]] == label_names.tolist()


def test_saved_model_truncates_long_inputs_to_max_length(tmp_path):
    student = student_of("single")
    path = export_saved_model(student, VOCABULARY, get_task("sst2"), 3, tmp_path / "saved_model")
    outputs = saved_model_predict(path, ["good film bad", "good film bad the plot " * 50, "", ""])
    np.testing.assert_allclose(outputs["logits"][0], outputs["logits"][1], atol=1e-6)
    np.testing.assert_allclose(outputs["probabilities"][2], [0.5, 0.5], atol=0.1)  # all padding: no crash


def test_saved_model_refuses_a_student_of_another_task(tmp_path):
    with pytest.raises(ValueError, match="'mnli' is sentence-pair"):
        export_saved_model(student_of("single"), VOCABULARY, get_task("mnli"), MAX_LENGTH, tmp_path / "x")


@pytest.mark.parametrize("kind", ["single", "pair"])
def test_tflite_uses_builtin_ops_only_and_matches_the_keras_student(kind, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    student = student_of(kind)
    task = get_task(TASKS[kind])
    path = export_tflite(student, task, VOCABULARY, MAX_LENGTH, tmp_path / "student.tflite")
    Interpreter(model_path=path).allocate_tensors()  # the plain interpreter: no Flex delegate
    tokenizer = WordTokenizer(VOCABULARY.tokens, MAX_LENGTH, pad_to_max_length=True)
    columns = text_inputs(kind) if kind == "pair" else (TEXTS,)
    ids = tuple(tokenizer(tf.constant(column)).numpy() for column in columns)
    report = verify_tflite(path, student, ids if kind == "pair" else ids[0])
    assert report["builtin_only"], report["operators"]
    assert not any(name.startswith("Flex") for name in report["operators"])
    assert report["max_abs_diff"] <= 1e-5 and report["label_agreement"] == 1.0
    # Batch size 1 and 37 work too.
    for batch_size in (1, 37):
        batch = tuple(np.resize(array, (batch_size, MAX_LENGTH)) for array in ids)
        logits = tflite_predict(path, batch if kind == "pair" else batch[0])
        np.testing.assert_allclose(logits, student(batch if kind == "pair" else batch[0]), atol=1e-5)
    # The files beside the model are enough to tokenize raw strings.
    np.testing.assert_allclose(
        tflite_predict_texts(path, text_inputs(kind)), tflite_predict(path, ids if kind == "pair" else ids[0])
    )


def test_tflite_metadata_describes_the_tokenization(tmp_path):
    path = export_tflite(student_of("single"), get_task("sst2"), VOCABULARY, MAX_LENGTH, tmp_path / "student.tflite")
    metadata = json.loads(pathlib.Path(metadata_path(path)).read_text(encoding="utf-8"))
    assert metadata["max_length"] == MAX_LENGTH and metadata["padding_id"] == 0 and metadata["labels"] == ["0", "1"]
    assert metadata["tokenization_rules"] == [list(rule) for rule in TOKENIZATION_RULES]
    assert Vocabulary.load(tmp_path / metadata["vocabulary_file"]) == VOCABULARY
    assert (tmp_path / "labels.txt").read_text().split() == ["0", "1"]


@pytest.mark.parametrize("quantization", ["float16", "dynamic_int8"])
def test_quantized_tflite_stays_close(quantization, tmp_path):
    student = BiLSTMClassifier(len(VOCABULARY), 16, 2, lstm_units=32, hidden_units=64)  # big enough to quantize
    path = export_tflite(
        student, get_task("sst2"), VOCABULARY, MAX_LENGTH, tmp_path / "student.tflite", quantization=quantization
    )
    plain = export_tflite(student, get_task("sst2"), VOCABULARY, MAX_LENGTH, tmp_path / "plain" / "student.tflite")
    ids = WordTokenizer(VOCABULARY.tokens, MAX_LENGTH, pad_to_max_length=True)(tf.constant(TEXTS)).numpy()
    report = verify_tflite(path, student, ids)
    assert report["builtin_only"] and report["max_abs_diff"] < 0.05
    assert (tmp_path / "student.tflite").stat().st_size < (tmp_path / "plain" / "student.tflite").stat().st_size
    assert plain.endswith("student.tflite")


def test_unknown_quantization_names_the_value(tmp_path):
    with pytest.raises(ValueError, match="quantization='int4'"):
        export_tflite(student_of("single"), get_task("sst2"), VOCABULARY, MAX_LENGTH, tmp_path / "s.tflite", "int4")
