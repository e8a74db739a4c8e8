"""The students' layers: `MaskedBiLSTM` against Keras' LSTM and on padding, and `StudentEmbedding`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bilstm_kd.student.layers import MaskedBiLSTM, StudentEmbedding

VOCABULARY_SIZE = 12


def test_masked_bilstm_matches_keras_bidirectional_lstm_on_unpadded_input():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(2, 5, 3)).astype("float32")
    reference = keras.layers.Bidirectional(keras.layers.LSTM(4))
    expected = reference(inputs)
    forward_kernel, forward_recurrent, forward_bias, backward_kernel, backward_recurrent, backward_bias = (
        reference.get_weights()
    )
    encoder = MaskedBiLSTM(4)
    encoder.build(inputs.shape)
    encoder.set_weights(
        [
            np.concatenate([forward_kernel, backward_kernel], axis=1),
            np.stack([forward_recurrent, backward_recurrent]),
            np.concatenate([forward_bias, backward_bias]),
        ]
    )
    np.testing.assert_allclose(encoder(inputs), expected, atol=1e-5)

    # Same gradients too, and padding gets none: only the words are projected.
    weights = tf.constant(rng.normal(size=(2, 8)).astype("float32"))
    padded = tf.constant(np.concatenate([inputs, rng.normal(size=(2, 2, 3)).astype("float32")], axis=1))
    mask = np.array([[True] * 5 + [False] * 2] * 2)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(padded)
        expected_loss = tf.reduce_sum(reference(padded[:, :5]) * weights)
        loss = tf.reduce_sum(encoder(padded, mask=mask) * weights)
    gradient = tape.gradient(loss, padded).numpy()
    np.testing.assert_allclose(gradient[:, :5], tape.gradient(expected_loss, padded)[:, :5], atol=1e-5)
    np.testing.assert_array_equal(gradient[:, 5:], 0.0)


def test_masked_bilstm_backward_direction_starts_at_the_last_word():
    rng = np.random.default_rng(1)
    words = rng.normal(size=(1, 3, 2)).astype("float32")
    padded = np.concatenate([words, rng.normal(size=(1, 4, 2)).astype("float32")], axis=1)
    encoder = MaskedBiLSTM(3)
    alone = encoder(words)
    # Garbage (not zeros) after the mask: it must not leak into either direction.
    masked = encoder(padded, mask=np.array([[True] * 3 + [False] * 4]))
    np.testing.assert_allclose(masked, alone, atol=1e-6)


@pytest.mark.parametrize("pack_rows", [True, False])
def test_ragged_batch_in_any_order_equals_each_sentence_alone_with_gradients(pack_rows):
    # Rows run longest first inside the layer: outputs and gradients must come back in the batch's order.
    rng = np.random.default_rng(2)
    lengths = [2, 5, 0, 3, 5, 1]
    inputs = tf.constant(rng.normal(size=(len(lengths), 5, 4)).astype("float32"))
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    row_weights = rng.normal(size=(len(lengths), 6)).astype("float32")
    encoder = MaskedBiLSTM(3, pack_rows=pack_rows)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        batch = encoder(inputs, mask=mask)
        total = tf.reduce_sum(batch * row_weights)
    weights = [encoder.kernel, encoder.recurrent_kernel, encoder.bias]
    batch_gradients = tape.gradient(total, [inputs, *weights])
    summed = [np.zeros(weight.shape, "float32") for weight in weights]
    np.testing.assert_array_equal(batch[2], 0.0)  # the empty sentence
    for row, length in enumerate(lengths):
        if not length:
            continue
        row_input = inputs[row : row + 1, :length]
        with tf.GradientTape() as tape:
            tape.watch(row_input)
            alone = encoder(row_input)
            row_total = tf.reduce_sum(alone * row_weights[row])
        np.testing.assert_allclose(batch[row : row + 1], alone, atol=1e-6)
        row_gradients = tape.gradient(row_total, [row_input, *weights])
        np.testing.assert_allclose(batch_gradients[0][row, :length], row_gradients[0][0], atol=1e-5)
        np.testing.assert_array_equal(batch_gradients[0][row, length:], 0.0)
        for index, gradient in enumerate(row_gradients[1:]):
            summed[index] += np.asarray(gradient)
    for batch_gradient, expected in zip(batch_gradients[1:], summed):  # the weights' gradient sums the rows'
        np.testing.assert_allclose(batch_gradient, expected, atol=1e-5)


def test_empty_sentence_encodes_to_zero_states():
    encoder = MaskedBiLSTM(3)
    output = encoder(np.ones((2, 0, 4), "float32"))
    np.testing.assert_array_equal(output, np.zeros((2, 6)))


def test_single_channel_embedding_has_one_trainable_copy():
    embedding = StudentEmbedding(VOCABULARY_SIZE, 4, multichannel=False)
    assert embedding(np.array([[1, 2]])).shape == (1, 2, 4)
    assert len(embedding.trainable_weights) == 1 and not embedding.non_trainable_weights
