"""Folding the word vectors into the LSTM input projection: the same logits, a table lookup instead of a product."""

import numpy as np
import pytest
from conftest import tiny_student

from bilstm_kd.student import folding
from bilstm_kd.student.models import BiLSTMClassifier

IDS = np.array([[5, 6, 7, 0, 0], [8, 0, 0, 0, 0], [0, 0, 0, 0, 0], [9, 10, 11, 12, 13]], "int32")


def trained_looking(student):
    """Random weights on every variable (biases included), so that no term of the fold is zero."""
    rng = np.random.default_rng(0)
    for variable in student.weights:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype("float32"))
    return student


@pytest.mark.parametrize("pair", [False, True])
def test_folded_student_gives_the_students_logits_on_ragged_batches(pair):
    student = trained_looking(tiny_student(20, 3, pair=pair))
    folded = folding.fold_student(student)
    inputs = (IDS, IDS[::-1, :4]) if pair else IDS
    expected = np.asarray(student(inputs))
    np.testing.assert_allclose(np.asarray(folded(inputs)), expected, atol=1e-5)
    assert np.ptp(expected, axis=0).min() > 1e-3  # the rows differ: the comparison is not of constants
    # Only the table is used: change a word's row and only sentences with that word move.
    encoder = folded.get_layer("folded_encoder")
    table = np.asarray(encoder.gate_table)
    table[7] += 1.0
    encoder.gate_table.assign(table)
    moved = np.abs(np.asarray(folded(inputs)) - expected).max(axis=1) > 1e-4
    holds_word = (IDS == 7).any(axis=1) | ((IDS[::-1, :4] == 7).any(axis=1) if pair else False)
    np.testing.assert_array_equal(moved, holds_word)


def test_gate_table_is_vectors_times_kernel_plus_bias_of_both_channels():
    student = trained_looking(BiLSTMClassifier(6, 2, 2, lstm_units=3, hidden_units=4, multichannel=True))
    frozen = np.asarray(student.embedding.frozen_embedding.embeddings)
    trainable = np.asarray(student.embedding.trainable_embedding.embeddings)
    kernel, bias = np.asarray(student.encoder.kernel), np.asarray(student.encoder.bias)
    expected = frozen @ kernel[:2] + trainable @ kernel[2:] + bias
    np.testing.assert_allclose(folding.gate_table(student), expected, atol=1e-6)
    assert folding.gate_table(student).shape == (6, 2 * 4 * 3)


def test_auto_folds_up_to_the_size_limit(monkeypatch):
    student = tiny_student(20)  # 20 words x 8 x 3 units x 4 bytes = 1,920 bytes
    assert folding.folded_bytes(student) == 1920
    assert folding.fold_pays(student, "auto") and folding.fold_pays(student, "fold")
    assert not folding.fold_pays(student, "unfolded")
    monkeypatch.setattr(folding, "AUTO_FOLD_MAX_BYTES", 1919)
    assert not folding.fold_pays(student, "auto") and folding.fold_pays(student, "fold")
    with pytest.raises(ValueError, match="folding='yes'"):
        folding.fold_pays(student, "yes")
