"""MPNetTextClassifierPreprocessor: MPNet's packing of singles and pairs, padding and truncation, the same ids
traced and in tf.data, presets, and the package's BertTeacher running on the MPNet classes."""

import functools

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from numpy_mpnet import MASK_ID, TINY, VOCABULARY
from test_backbone import shared_backbone

from bilstm_kd.teacher.inference import encode_texts, teacher_logits
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.teacher.mpnet import MPNetBackbone, MPNetTextClassifierPreprocessor, MPNetTokenizer

START, PAD, END = 0, 1, 2


def ids(text):
    return [VOCABULARY.index(word) for word in text.split()]


@functools.cache
def preprocessor(sequence_length=10, truncate="round_robin"):
    tokenizer = MPNetTokenizer(VOCABULARY, special_tokens_in_strings=True)
    return MPNetTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length, truncate=truncate)


def as_lists(packed):
    return {name: np.asarray(values).astype(int).tolist() for name, values in packed.items()}


def test_single_sentences_are_packed_and_padded():
    packed = as_lists(preprocessor()(["a good film", "the film was not very good at all !"]))
    assert packed["token_ids"] == [
        [START, *ids("a good film"), END, PAD, PAD, PAD, PAD, PAD],
        [START, *ids("the film was not very good"), 4, 4, END],  # cut to 10; "at" and "all" are unknown
    ]
    assert packed["padding_mask"] == [[1] * 5 + [0] * 5, [1] * 10]
    assert packed["segment_ids"] == [[0] * 10, [0] * 10]


def test_pairs_are_packed_with_two_end_tokens_between_and_cut_round_robin():
    first = tf.constant(["a good film", "a", "the film was not very good"])
    second = tf.constant(["a film", "the film was not very good .", "a bad movie !"])
    packed = as_lists(preprocessor()(x=(first, second)))
    assert packed["token_ids"] == [
        [START, *ids("a good film"), END, END, *ids("a film"), END, PAD],
        [START, *ids("a"), END, END, *ids("the film was not very"), END],  # only the longer one is cut
        [START, *ids("the film was"), END, END, *ids("a bad movie"), END],  # both cut, one token at a time
    ]
    assert packed["padding_mask"] == [[1] * 9 + [0], [1] * 10, [1] * 10]
    assert packed["segment_ids"] == [[0] * 10] * 3  # no token types: BertBackbone-shaped inputs
    waterfall = as_lists(preprocessor(truncate="waterfall")(x=(first[2:], second[2:])))
    assert waterfall["token_ids"] == [[START, *ids("the film was not very good"), END, END, END]]  # first one first


def test_same_ids_traced_and_in_tf_data():
    texts = tf.constant(["a good film", "the film was not very good at all !", "a <mask> movie"])
    labels = tf.constant([1, 0, 1])
    direct = as_lists(preprocessor()(texts))
    assert direct["token_ids"][2][2] == MASK_ID
    # Labels pass through a dataset map, as keras-hub preprocessors do.
    rows = [(as_lists(x), int(y)) for x, y in tf.data.Dataset.from_tensor_slices((texts, labels)).map(preprocessor())]
    assert [row["token_ids"] for row, _ in rows] == direct["token_ids"]
    assert [label for _, label in rows] == [1, 0, 1]
    # Pairs inside a tf.function, as the package encodes them (TensorFlow Text rather than the Python path).
    traced = tf.function(lambda first, second: preprocessor()(x=(first, second)))(texts, texts[::-1])
    assert as_lists(traced) == as_lists(preprocessor()(x=(texts, texts[::-1])))


def test_config_round_trip():
    restored = MPNetTextClassifierPreprocessor.from_config(preprocessor().get_config())
    restored.tokenizer.set_vocabulary(VOCABULARY)  # .keras files and presets carry it as an asset
    assert (restored.sequence_length, restored.truncate) == (10, "round_robin")
    texts = tf.constant(["a good film", "a <mask> movie"])
    assert as_lists(restored(x=(texts, texts))) == as_lists(preprocessor()(x=(texts, texts)))


def test_backbone_tokenizer_and_preprocessor_presets(tmp_path):
    directory = str(tmp_path / "preset")
    shared_backbone().save_to_preset(directory)
    preprocessor().tokenizer.save_to_preset(directory)
    preprocessor().save_to_preset(directory)
    texts = tf.constant(["a good film", "a <mask> movie"])
    expected = as_lists(preprocessor()(x=(texts, texts)))
    for loader in (MPNetTextClassifierPreprocessor, keras_hub.models.TextClassifierPreprocessor):
        loaded = loader.from_preset(directory)  # the base class finds MPNet's from the preset's backbone
        assert isinstance(loaded, MPNetTextClassifierPreprocessor)
        assert loaded.sequence_length == 10 and loaded.tokenizer.special_tokens_in_strings
        assert as_lists(loaded(x=(texts, texts))) == expected
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(directory)
    assert isinstance(tokenizer, MPNetTokenizer) and tokenizer.get_vocabulary() == VOCABULARY
    assert isinstance(keras_hub.models.Backbone.from_preset(directory), MPNetBackbone)


@pytest.fixture(scope="module")
def mpnet_teacher():
    teacher = BertTeacher(shared_backbone(), preprocessor(TINY["max_sequence_length"]), num_classes=3, pooling="mean")
    logits_layer = teacher.get_layer("logits")
    logits_layer.kernel.assign(np.random.default_rng(0).normal(size=logits_layer.kernel.shape))
    return teacher


def test_bert_teacher_runs_on_the_mpnet_classes(mpnet_teacher, tmp_path):
    # As the package uses a teacher: encode_texts (traced preprocessor, unpadded), then length-grouped batches.
    texts = ["a good film", "the film was not very good !", "a <mask> movie"]
    encoded = encode_texts(mpnet_teacher.preprocessor, texts)
    assert encoded.pad_id == PAD and encoded.lengths.tolist() == [5, 9, 5]
    assert encoded.token_ids[encoded.offsets[2] + 2] == MASK_ID
    logits = teacher_logits(mpnet_teacher, texts)
    packed = preprocessor(TINY["max_sequence_length"])(texts)
    expected = np.asarray(mpnet_teacher(packed))
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert mpnet_teacher.backbone.get_layer("pooled_dense").trainable  # what fine-tuning freezes under "mean"

    assert mpnet_teacher.with_precision("mixed_bfloat16").backbone.compute_dtype == "bfloat16"

    path = str(tmp_path / "teacher.keras")  # how the package saves a fine-tuned teacher
    mpnet_teacher.save(path)
    restored = keras.saving.load_model(path, compile=False)
    assert isinstance(restored.backbone, MPNetBackbone)
    assert isinstance(restored.preprocessor, MPNetTextClassifierPreprocessor)
    assert restored.preprocessor.tokenizer.get_vocabulary() == VOCABULARY
    np.testing.assert_allclose(np.asarray(restored(restored.preprocessor(texts))), expected, atol=1e-6)
