"""SparseAdadelta: Keras' AdaDelta result, writing only the embedding rows a batch uses."""

import warnings

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.student.optimizers import SparseAdadelta

VOCABULARY_SIZE = 12


def adadelta(kind):
    return kind(learning_rate=1.0, rho=0.95, epsilon=1e-6)


def batches(steps=12):
    """Word ids with repeats inside a batch, and rows left unused for several steps in a row."""
    rng = np.random.default_rng(0)
    for step in range(steps):
        high = 4 if step % 4 else VOCABULARY_SIZE  # rows 4 and up only every fourth step
        yield tf.constant(rng.integers(0, high, size=(3, 5)))


def sequential(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.layers.Embedding(VOCABULARY_SIZE, 4), keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.build((None, 5))
    return model


def train(optimizer, densify=False):
    """Steps of a tiny embedding + dense model; the weights after every step."""
    model = sequential(optimizer)
    target = tf.constant([[1.0, -1.0]])
    after_each_step = []
    for ids in batches():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(ids) - target))
        gradients = tape.gradient(loss, model.trainable_variables)
        assert isinstance(gradients[0], tf.IndexedSlices)
        if densify:
            gradients = [tf.convert_to_tensor(gradient) for gradient in gradients]
        optimizer.apply(gradients, model.trainable_variables)
        after_each_step.append([weight.numpy() for weight in model.trainable_variables])
    return after_each_step


def test_every_step_gives_the_weights_of_adadelta_on_the_dense_gradient():
    expected = train(adadelta(keras.optimizers.Adadelta), densify=True)
    actual = train(adadelta(SparseAdadelta))
    for step, (expected_weights, actual_weights) in enumerate(zip(expected, actual)):
        for e, a in zip(expected_weights, actual_weights):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-7, err_msg=f"step {step}")
    assert not np.allclose(expected[0][0], expected[-1][0])  # the embeddings moved


def test_keras_adadelta_on_the_same_sparse_gradient_differs_for_repeated_words():
    # Keras squares each slice of a tf.IndexedSlices before summing repeated rows, so a word used twice
    # in a batch adds g1^2 + g2^2 to its accumulator instead of (g1 + g2)^2: not AdaDelta. This is what
    # SparseAdadelta corrects besides the cost (and why the first test densifies the reference's input).
    dense = train(adadelta(keras.optimizers.Adadelta), densify=True)
    keras_on_slices = train(adadelta(keras.optimizers.Adadelta))
    assert np.abs(dense[-1][0] - keras_on_slices[-1][0]).max() > 1e-3


def test_rows_a_batch_does_not_use_are_not_written():
    embedding = keras.layers.Embedding(VOCABULARY_SIZE, 4)
    embedding.build((None,))
    optimizer = adadelta(SparseAdadelta)

    def step(ids):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(embedding(tf.constant(ids))))
        optimizer.apply(tape.gradient(loss, [embedding.embeddings]), [embedding.embeddings])
        return {v.path: v.numpy().copy() for v in [embedding.embeddings, *optimizer.variables] if len(v.shape) == 2}

    before = step(list(range(VOCABULARY_SIZE)))  # every row has moved and has non-zero accumulators
    after = step([1, 2, 2])
    assert len(before) == 3  # the embeddings, squared gradients and squared updates
    for path in before:
        changed = np.flatnonzero(np.any(before[path] != after[path], axis=1))
        # Keras' dense update would also have decayed the accumulators of the other ten rows.
        assert changed.tolist() == [1, 2], path


def test_state_saved_mid_training_resumes_to_the_same_weights(tmp_path):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, VOCABULARY_SIZE, size=(24, 5))
    ids[:, 0] = np.where(np.arange(24) < 12, ids[:, 0], 11)  # row 11 only in the second half
    targets = rng.normal(size=(24, 2)).astype("float32")

    straight = sequential(adadelta(SparseAdadelta))
    straight.fit(ids, targets, batch_size=4, epochs=2, shuffle=False, verbose=0)
    first = sequential(adadelta(SparseAdadelta))
    first.fit(ids, targets, batch_size=4, epochs=1, shuffle=False, verbose=0)
    first.save_weights(tmp_path / "half.weights.h5")
    resumed = sequential(adadelta(SparseAdadelta))
    resumed.optimizer.build(resumed.trainable_variables)
    resumed.load_weights(tmp_path / "half.weights.h5")
    resumed.fit(ids, targets, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, e in zip(resumed.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-7)


def test_state_saved_by_keras_adadelta_is_taken_over(tmp_path):
    # Runs begun before SparseAdadelta checkpointed Keras' AdaDelta; resuming one must keep its state.
    ids = np.random.default_rng(2).integers(0, VOCABULARY_SIZE, size=(16, 5))
    targets = np.ones((16, 2), "float32")
    old = sequential(adadelta(keras.optimizers.Adadelta))
    old.fit(ids, targets, batch_size=4, epochs=1, verbose=0)
    old.save_weights(tmp_path / "old.weights.h5")
    new = sequential(adadelta(SparseAdadelta))
    new.optimizer.build(new.trainable_variables)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras only warns when it skips an optimizer's state
        new.load_weights(tmp_path / "old.weights.h5")
    for saved, loaded in zip(old.optimizer.variables, new.optimizer.variables):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    row_steps = new.optimizer.variables[len(old.optimizer.variables) :]
    assert int(new.optimizer.iterations) == 4 and all((steps.numpy() == 4).all() for steps in row_steps)
