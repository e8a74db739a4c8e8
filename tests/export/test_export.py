"""SavedModel (strings in) and TFLite (ids in, builtin ops only) exports, reloaded and compared with Keras."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_student

from bilstm_kd.data.tasks import Task, get_task
from bilstm_kd.export.saved_model import export_saved_model, saved_model_predict, verify_saved_model
from bilstm_kd.export.tflite import (
    export_tflite,
    metadata_path,
    tflite_input_length,
    tflite_predict,
    tflite_predict_texts,
    verify_tflite,
)
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


# ----------------------------------------------------------------------------------------------------------------
# Folded exports: the word vectors folded into the input projection, checked against the unfolded student


def random_weights(student, scale=0.5):
    rng = np.random.default_rng(0)
    for variable in student.weights:
        variable.assign(rng.normal(scale=scale, size=variable.shape).astype("float32"))
    return student


@pytest.mark.parametrize("kind", ["single", "pair"])
def test_folded_saved_model_and_tflite_match_the_unfolded_student(kind, tmp_path):
    student = random_weights(student_of(kind))
    task = get_task(TASKS[kind])
    saved = export_saved_model(student, VOCABULARY, task, MAX_LENGTH, tmp_path / "saved_model", fold=True)
    report = verify_saved_model(saved, student, VOCABULARY, MAX_LENGTH, text_inputs(kind))
    assert report["max_abs_diff"] <= 1e-5 and report["label_agreement"] == 1.0
    path = export_tflite(student, task, VOCABULARY, MAX_LENGTH, tmp_path / "student.tflite", fold=True)
    tokenizer = WordTokenizer(VOCABULARY.tokens, MAX_LENGTH, pad_to_max_length=True)
    columns = text_inputs(kind) if kind == "pair" else (TEXTS,)
    ids = tuple(tokenizer(tf.constant(column)).numpy() for column in columns)
    report = verify_tflite(path, student, ids if kind == "pair" else ids[0])
    assert report["builtin_only"] and report["max_abs_diff"] <= 1e-5
    assert json.loads(pathlib.Path(metadata_path(path)).read_text())["folded"] is True


# ----------------------------------------------------------------------------------------------------------------
# The MediaPipe TextClassifier file: one subgraph of builtin ops, the regex tokenizer inside, run by the runtime

mediapipe_export = pytest.importorskip("bilstm_kd.export.mediapipe")
REGEX_TEXTS = [
    "The good film.",  # case
    "THE GOOD FILM",
    "GooD film",  # a spelling the vocabulary does not list: unknown, in training and at runtime alike
    "it's a film that doesn't work, isn't it?",  # apostrophes stay inside words
    'good—film... (bad); "the" plot!',  # punctuation and dashes split
    "naïve Über plot café",  # accents: whole words
    "unknown words only",
    "good film bad the plot " * 20,  # longer than the fixed length
    "",  # empty
]
REGEX_VOCABULARY = Vocabulary.from_texts(
    ["the good film", "bad plot", "it's naïve", "doesn't work", "isn't it", "über café"], tokenizer="regex"
)
LENGTH = 8


def regex_student(num_classes=3):
    return random_weights(BiLSTMClassifier(len(REGEX_VOCABULARY), 4, num_classes, lstm_units=3, hidden_units=5))


def regex_ids(texts, length=LENGTH):
    tokenizer = WordTokenizer(REGEX_VOCABULARY.tokens, length, pad_to_max_length=True, tokenizer="regex")
    return tokenizer(tf.constant(texts)).numpy()


@pytest.fixture(scope="module")
def mobile_file(tmp_path_factory):
    student = regex_student()
    task = Task("feelings", ("sadness", "joy", "anger"), False, ("accuracy",))
    path = mediapipe_export.export_mediapipe(
        student, task, REGEX_VOCABULARY, LENGTH, tmp_path_factory.mktemp("mobile") / "student_mediapipe.tflite"
    )
    return path, student, task


def test_mediapipe_file_is_one_subgraph_of_builtin_ops(mobile_file):
    from bilstm_kd.export.tflite import tflite_operators

    path, _, _ = mobile_file
    assert mediapipe_export.subgraph_count(path) == 1
    operators = tflite_operators(path)
    assert "WHILE" not in operators and "CUSTOM" not in operators
    assert not any(name.startswith("Flex") for name in operators)
    assert tflite_input_length(path) == LENGTH


def test_mediapipe_runtime_scores_equal_the_interpreter_on_training_time_ids(mobile_file):
    path, student, task = mobile_file
    runtime = mediapipe_export.classify_with_mediapipe(path, REGEX_TEXTS, task.num_classes)
    # The interpreter is fed the ids of the student's training-time tokenizer: equal scores mean the
    # runtime tokenized each raw sentence exactly as training does.
    interpreter = mediapipe_export.interpreter_probabilities(path, regex_ids(REGEX_TEXTS))
    np.testing.assert_allclose(runtime, interpreter, atol=1e-6)
    assert np.ptp(runtime[:, 0]) > 1e-3  # the sentences score differently: the check has teeth
    keras_probabilities = tf.nn.softmax(student(regex_ids(REGEX_TEXTS))).numpy()
    np.testing.assert_allclose(runtime, keras_probabilities, atol=1e-5)
    # Case: "The good film." and "THE GOOD FILM" are the same ids; "GooD" is unknown.
    np.testing.assert_array_equal(regex_ids(REGEX_TEXTS[:1]), regex_ids(REGEX_TEXTS[1:2]))
    np.testing.assert_allclose(runtime[0], runtime[1], atol=1e-7)
    assert regex_ids(["GooD"])[0, 0] == 1


def test_mediapipe_categories_come_back_by_name(mobile_file):
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    path, _, task = mobile_file
    options = text.TextClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)))
    with text.TextClassifier.create_from_options(options) as classifier:
        categories = classifier.classify("the good film").classifications[0].categories
    assert sorted(category.category_name for category in categories) == sorted(task.label_names)
    assert {category.category_name: category.index for category in categories} == {
        name: index for index, name in enumerate(task.label_names)
    }
    assert sum(category.score for category in categories) == pytest.approx(1.0, abs=1e-5)  # probabilities


def test_mediapipe_verification_reports_agreement_and_scores(mobile_file):
    path, student, task = mobile_file
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    report = mediapipe_export.verify_mediapipe(path, student, REGEX_VOCABULARY, REGEX_TEXTS, labels, task)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff"] <= 1e-5
    assert (
        report["examples"] == 9 and report["length"] == LENGTH and report["truncated"] == pytest.approx(1 / 9, abs=1e-4)
    )
    runtime = mediapipe_export.classify_with_mediapipe(path, REGEX_TEXTS, task.num_classes)
    assert report["scores"]["accuracy"] == pytest.approx(np.mean(runtime.argmax(-1) == labels))


def test_unfolded_and_quantized_mediapipe_files(tmp_path):
    student = regex_student(2)
    task = get_task("sst2")
    expected = tf.nn.softmax(student(regex_ids(REGEX_TEXTS))).numpy()
    sizes = {}
    for name, settings in {
        "unfolded": {"fold": False},
        "float16": {"quantization": "float16"},
        "dynamic_int8": {"quantization": "dynamic_int8"},
    }.items():
        path = mediapipe_export.export_mediapipe(
            student, task, REGEX_VOCABULARY, LENGTH, tmp_path / name / "m.tflite", **settings
        )
        runtime = mediapipe_export.classify_with_mediapipe(path, REGEX_TEXTS, 2)
        np.testing.assert_allclose(runtime, expected, atol=1e-5 if name == "unfolded" else 0.05)
        assert mediapipe_export.subgraph_count(path) == 1
        sizes[name] = pathlib.Path(path).stat().st_size
    assert sizes["dynamic_int8"] < sizes["float16"]


def test_mediapipe_export_refuses_a_pair_student(tmp_path):
    with pytest.raises(ValueError, match="sentence-pair student cannot be exported"):
        mediapipe_export.export_mediapipe(
            student_of("pair"), get_task("mnli"), VOCABULARY, LENGTH, tmp_path / "m.tflite"
        )


def test_runtime_vocabulary_lists_every_spelling_with_pad_and_unknown_first():
    lines = mediapipe_export.runtime_vocabulary(REGEX_VOCABULARY)
    assert lines[:2] == [("<PAD>", 0), ("<UNKNOWN>", 1)]
    spellings = dict(lines)
    good = REGEX_VOCABULARY.tokens.index("good")
    assert spellings["good"] == spellings["Good"] == spellings["GOOD"] == good
    assert "[MASK]" not in spellings and all(" " not in spelling for spelling in spellings)


@pytest.mark.parametrize(
    ("counts", "max_length", "expected"), [([3] * 99 + [40], 64, 8), ([20] * 50 + [33] * 50, 64, 40), ([90], 64, 64)]
)
def test_mediapipe_length_is_the_99th_percentile_in_multiples_of_8(counts, max_length, expected):
    assert mediapipe_export.mediapipe_length(counts, max_length) == expected


def test_load_classifier_takes_a_mediapipe_file(mobile_file):
    from bilstm_kd.classifier import find_model, load_classifier

    path, student, task = mobile_file
    assert find_model(path) == (str(path), "mediapipe")  # no student_mediapipe.metadata.json beside it
    assert find_model(pathlib.Path(path).parent, "mediapipe") == (str(path), "mediapipe")
    classifier = load_classifier(path)
    assert classifier.label_names == task.label_names and not classifier.is_pair
    predictions = classifier.predict(REGEX_TEXTS)
    expected = tf.nn.softmax(student(regex_ids(REGEX_TEXTS))).numpy()
    np.testing.assert_allclose(predictions.probabilities, expected, atol=1e-5)
    assert predictions.labels == [task.label_names[i] for i in expected.argmax(-1)]
