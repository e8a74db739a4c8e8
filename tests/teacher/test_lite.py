"""Tests of the TFLite teacher with int8 weights (`--label_precision=dynamic_int8`) and of checked labelling."""

import keras_hub
import numpy as np
import pytest
from conftest import MAX_LENGTH, VOCABULARY, shared_teacher, tiny_bert_backbone, tiny_tokenizer

from bilstm_kd.teacher.inference import checked_logits, encode_texts, encoded_logits
from bilstm_kd.teacher.lite import LiteTeacher, doubtful_examples
from bilstm_kd.teacher.model import BertTeacher, TeacherEnsemble

TEXTS = [
    "a good film", "the movie was bad", "very very good .", "a [MASK] film", "not good", "bad !",
    "the film was not very good !", "great", "a great cafe , not awful", "awful awful movie",
]  # fmt: skip


@pytest.fixture(scope="module")
def wide_teacher():
    """A teacher whose matrices are big enough (>= 1,024 weights) for the converter to quantize them."""
    backbone = tiny_bert_backbone(len(VOCABULARY), MAX_LENGTH, seed=3)
    backbone = keras_hub.models.BertBackbone.from_config(
        {**backbone.get_config(), "hidden_dim": 64, "intermediate_dim": 128}
    )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=MAX_LENGTH)
    teacher = BertTeacher(backbone, preprocessor, num_classes=3, pooling="mean")
    rng = np.random.default_rng(0)
    logits = teacher.get_layer("logits")
    logits.kernel.assign(rng.normal(size=logits.kernel.shape) * 0.5)
    return teacher


@pytest.fixture(scope="module")
def wide_lite(wide_teacher):
    return LiteTeacher(wide_teacher)


def test_int8_logits_are_close_to_the_float_teachers_and_do_not_depend_on_the_batch(wide_teacher, wide_lite):
    encoded = encode_texts(wide_teacher.preprocessor, TEXTS)
    float_logits = encoded_logits(wide_teacher, encoded, batch_size=4)
    int8_logits = encoded_logits(wide_lite, encoded, batch_size=4)
    difference = np.abs(int8_logits - float_logits).max()
    # Quantized, so not equal; within 5% of the logits' range.
    assert 1e-5 < difference < 0.05 * np.ptp(float_logits)
    # Activations are quantized per word piece, so a sentence's logits are the same alone or in any batch.
    np.testing.assert_allclose(encoded_logits(wide_lite, encoded, batch_size=1), int8_logits, atol=1e-6)
    assert wide_lite.num_classes == 3 and wide_lite.sequence_length == MAX_LENGTH
    assert len(wide_lite.flatbuffer) < 0.5 * 4 * wide_teacher.count_params()  # int8 weights, not float32


def test_a_small_teacher_and_an_ensemble_convert_exactly():
    members = [shared_teacher(pooling="mean"), shared_teacher(pooling="cls")]
    encoded = encode_texts(members[0].preprocessor, TEXTS)
    # The converter leaves matrices under 1,024 weights in float32: these 8-wide teachers are not quantized at all.
    for teacher in (members[0], TeacherEnsemble(members)):
        lite = LiteTeacher(teacher, threads=1)
        np.testing.assert_allclose(encoded_logits(lite, encoded, 3), encoded_logits(teacher, encoded, 3), atol=1e-5)


def test_doubtful_examples_are_those_with_close_top_two_logits():
    logits = np.array([[0.0, 2.0, 1.5], [3.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.2, 0.0, 0.9]])
    np.testing.assert_array_equal(doubtful_examples(logits, 0.6), [0, 2])
    np.testing.assert_array_equal(doubtful_examples(logits, 0.75), [0, 2, 3])
    assert doubtful_examples(logits, 0.0).size == 0
    assert doubtful_examples(np.zeros([3, 1]), 1.0).size == 0  # regression: one logit, nothing to compare


@pytest.mark.parametrize("margin", [0.0, 0.3, 100.0])
def test_checked_logits_take_the_teachers_where_int8_is_unsure(wide_teacher, wide_lite, margin):
    encoded = encode_texts(wide_teacher.preprocessor, TEXTS)
    float_logits = encoded_logits(wide_teacher, encoded, batch_size=4)
    int8_logits = encoded_logits(wide_lite, encoded, batch_size=4)
    logits, doubtful = checked_logits(wide_lite, wide_teacher, encoded, margin, batch_size=3)
    np.testing.assert_array_equal(doubtful, doubtful_examples(int8_logits, margin))
    sure = np.setdiff1d(np.arange(len(TEXTS)), doubtful)
    np.testing.assert_allclose(logits[sure], int8_logits[sure], atol=1e-6)
    np.testing.assert_allclose(logits[doubtful], float_logits[doubtful], atol=1e-5)
    assert len(doubtful) == {0.0: 0, 100.0: len(TEXTS)}.get(margin, len(doubtful))
    if margin == 0.3:
        assert 0 < len(doubtful) < len(TEXTS)  # the margin splits this set


def test_selected_examples_pack_the_same_ids(wide_teacher):
    encoded = encode_texts(wide_teacher.preprocessor, TEXTS)
    indices = np.array([6, 0, 3])
    selected = encoded.select(indices)
    np.testing.assert_array_equal(selected.lengths, encoded.lengths[indices])
    for position, index in enumerate(indices):
        alone, original = selected.batch(np.array([position])), encoded.batch(np.array([index]))
        for name in original:
            np.testing.assert_array_equal(alone[name], original[name])
    assert len(encoded.select(np.zeros([0], np.int64))) == 0
