"""The students' layers: `MaskedBiLSTM` against Keras' LSTM and on padding, and `StudentEmbedding`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bilstm_kd.distribute.devices import has_gpu
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


def test_cudnn_kernel_gives_the_masked_kernels_outputs_and_gradients_on_the_same_weights():
    # On a CPU the "cudnn" form runs Keras' generic LSTM loop: what is checked is that the same weights, masks
    # and directions reach Keras' LSTM, which takes cuDNN's fused kernel on a GPU.
    rng = np.random.default_rng(3)
    lengths = [4, 1, 0, 6, 2]
    # Garbage, not zeros, in the padding: neither form may read it.
    inputs = tf.constant(rng.normal(size=(len(lengths), 6, 5)).astype("float32"))
    mask = tf.constant(np.arange(6)[None, :] < np.array(lengths)[:, None])
    row_weights = tf.constant(rng.normal(size=(len(lengths), 8)).astype("float32"))
    masked = MaskedBiLSTM(4, lstm_kernel="masked")
    cudnn = MaskedBiLSTM(4, lstm_kernel="cudnn")
    masked.build(inputs.shape)
    cudnn.build(inputs.shape)
    assert cudnn.uses_cudnn and not masked.uses_cudnn
    # One set of weights: the cuDNN form owns no others (Keras' LSTMs are not tracked, nor saved).
    assert [weight.shape for weight in cudnn.weights] == [weight.shape for weight in masked.weights]
    cudnn.set_weights(masked.get_weights())

    @tf.function  # as in training: a traced graph
    def outputs_and_gradients(encoder):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            encoding = encoder(inputs, mask=mask)
            total = tf.reduce_sum(encoding * row_weights)
        return encoding, tape.gradient(total, [inputs, *encoder.trainable_weights])

    expected_encoding, expected_gradients = outputs_and_gradients(masked)
    encoding, gradients = outputs_and_gradients(cudnn)
    np.testing.assert_allclose(encoding, expected_encoding, atol=1e-5)
    np.testing.assert_array_equal(encoding[2], 0.0)  # the empty row, which cuDNN itself would reject
    for gradient, expected in zip(gradients, expected_gradients):
        np.testing.assert_allclose(gradient, expected, atol=1e-5)
    np.testing.assert_array_equal(gradients[0].numpy()[np.arange(6)[None, :] >= np.array(lengths)[:, None]], 0.0)


def test_auto_kernel_is_the_masked_loop_without_a_gpu_and_is_kept_in_the_config():
    encoder = MaskedBiLSTM(3)
    assert encoder.lstm_kernel == "auto" and encoder.uses_cudnn == has_gpu()
    restored = MaskedBiLSTM.from_config(MaskedBiLSTM(3, lstm_kernel="cudnn").get_config())
    assert restored.lstm_kernel == "cudnn"
    with pytest.raises(ValueError, match="lstm_kernel"):
        MaskedBiLSTM(3, lstm_kernel="fused")


def test_empty_sentence_encodes_to_zero_states():
    encoder = MaskedBiLSTM(3)
    output = encoder(np.ones((2, 0, 4), "float32"))
    np.testing.assert_array_equal(output, np.zeros((2, 6)))


def test_single_channel_embedding_has_one_trainable_copy():
    embedding = StudentEmbedding(VOCABULARY_SIZE, 4, multichannel=False)
    assert embedding(np.array([[1, 2]])).shape == (1, 2, 4)
    assert len(embedding.trainable_weights) == 1 and not embedding.non_trainable_weights
