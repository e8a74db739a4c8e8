"""The students' layers: `MaskedBiLSTM`, their encoder, and `StudentEmbedding`, their word vectors.

`MaskedBiLSTM` is a one-layer bidirectional LSTM written for this package rather than
`keras.layers.Bidirectional(keras.layers.LSTM(...))`, for three reasons:

- Padding: each direction stops at the sentence's own length (the backward direction starts at its last
  word, not at the padding), so a sentence's encoding does not depend on how long its batch is. That makes
  length-bucketed batches and per-batch padding exact.
- Speed: the input projection of all time steps and both directions is one matrix product before the
  loop; the loop only does the recurrent products, batched over the two directions, and only for the rows
  still inside their sentence (rows run longest first, so those are a prefix of the batch); it carries
  only the states (the students need the final states, not the sequence of outputs).
- Export: the loop is a plain `tf.while_loop` over states reading a TensorArray, which the TFLite
  converter turns into builtin ops, so the exported model runs on the plain LiteRT interpreter.

On a GPU the same weights run instead through Keras' `LSTM`, which calls cuDNN's fused kernel there
(`lstm_kernel`): a loop of small steps is what a CPU does well and a GPU does badly.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.distribute.devices import has_gpu
from bilstm_kd.student import LSTM_KERNELS


def check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}")


def check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1), received dropout={dropout!r}")


class Words:
    """Where the words of a right-padded batch are: `positions` `[words, 2]` (row, step) in row-major order,
    each row's `lengths`, and `last_step`, the longest row (positions past it change nothing)."""

    def __init__(self, positions: tf.Tensor, lengths: tf.Tensor, batch_size: tf.Tensor):
        self.positions = positions
        self.lengths = lengths
        self.batch_size = batch_size
        self.last_step = tf.reduce_max(tf.concat([lengths, [0]], axis=0))

    @classmethod
    def of(cls, mask: tf.Tensor) -> Words:
        """The words of a boolean `[batch, time]` mask, `True` at words."""
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        return cls(tf.where(mask), lengths, tf.shape(mask)[0])


def _lstm_cell(gates: tf.Tensor, cell: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The new hidden and cell states from the gates (input, forget, cell, output) and the cell state."""
    input_gate, forget_gate, candidate, output_gate = tf.split(gates, 4, axis=-1)
    new_cell = tf.sigmoid(forget_gate) * cell + tf.sigmoid(input_gate) * tf.tanh(candidate)
    return tf.sigmoid(output_gate) * tf.tanh(new_cell), new_cell


def bidirectional_recurrence(
    projected: tf.Tensor, words: Words, recurrent_kernel: tf.Tensor, pack_rows: bool = True
) -> tf.Tensor:
    """Both directions' final states from each word's input-gate pre-activations.

    Args:
        projected: `[words, 2 * 4 * units]`, one row per word of `words.positions` (in that order): the input
            projection plus bias of the forward then of the backward direction, gates input, forget, cell,
            output.
        words: where the words are.
        recurrent_kernel: `[2, units, 4 * units]`.
        pack_rows: multiply only the rows still inside their sentence at each step (faster for batches;
            for one sentence at a time on a phone's interpreter, the slicing costs more than it saves).

    Returns:
        `[batch, 2 * units]`: the forward final state, then the backward one (zeros for an empty row).
    """
    units = recurrent_kernel.shape[1]
    lengths, last_step, batch_size = words.lengths, words.last_step, words.batch_size
    # Rows run longest first: at step t the rows still inside their sentence are a prefix of the batch, and
    # only that prefix is multiplied (a batch of 512 SST-2 dev sentences padded to its longest is 55-60%
    # padding; a finished row is not computed at all, as in PyTorch's packed sequences).
    order = tf.argsort(lengths, direction="DESCENDING", stable=True)  # sorted place -> row
    place = tf.scatter_nd(order[:, None], tf.range(batch_size), [batch_size])  # row -> sorted place (builtin ops)
    sorted_lengths = tf.gather(lengths, order)
    # The rows inside their sentence at each step: a prefix of the sorted rows.
    active = tf.reduce_sum(tf.cast(sorted_lengths[None, :] > tf.range(last_step)[:, None], tf.int32), axis=1)
    # Each word's gates go to [time, direction, sorted row], the layout the loop reads. The backward
    # direction takes each sentence in reverse within its own length: its last word first, so both directions
    # share one step counter and one active prefix. Positions past the longest sentence are never read (a
    # fixed-length TFLite input of 64 positions holding a 20-word sentence then costs 20 steps, not 64).
    row, word = tf.cast(words.positions[:, 0], tf.int32), tf.cast(words.positions[:, 1], tf.int32)
    sorted_row = tf.gather(place, row)
    forward_at = tf.stack([word, tf.zeros_like(row), sorted_row], axis=1)
    backward_at = tf.stack([tf.gather(lengths, row) - 1 - word, tf.ones_like(row), sorted_row], axis=1)
    # A word's row of `projected` holds its forward then its backward gates: reshaped (no copy), they are
    # two rows, one for each direction, which the interleaved targets match.
    gates_by_step = tf.scatter_nd(
        tf.reshape(tf.stack([forward_at, backward_at], axis=1), [-1, 3]),
        tf.reshape(projected, [-1, 4 * units]),
        tf.stack([last_step, 2, batch_size, 4 * units]),
    )
    # Read step by step from a TensorArray: its gradient is written one step at a time, whereas the
    # gradient of a gather from a tensor the loop captures is a dense tensor the size of the whole
    # sequence, added up at every step (4x slower training at batch 256, 50 steps).
    steps = tf.TensorArray(projected.dtype, size=last_step).unstack(gates_by_step)

    def packed_step(time, hidden, cell):  # only the rows still inside their sentence
        inside = active[time]
        gates = steps.read(time)[:, :inside] + tf.matmul(hidden[:, :inside], recurrent_kernel)
        new_hidden, new_cell = _lstm_cell(gates, cell[:, :inside])
        new_hidden = tf.concat([new_hidden, hidden[:, inside:]], axis=1)
        new_cell = tf.concat([new_cell, cell[:, inside:]], axis=1)
        new_hidden.set_shape(hidden.shape)
        new_cell.set_shape(cell.shape)
        return time + 1, new_hidden, new_cell

    def full_step(time, hidden, cell):  # every row, keeping the states of finished ones
        new_hidden, new_cell = _lstm_cell(steps.read(time) + tf.matmul(hidden, recurrent_kernel), cell)
        inside = tf.reshape(time < sorted_lengths, [1, -1, 1])
        return time + 1, tf.where(inside, new_hidden, hidden), tf.where(inside, new_cell, cell)

    zeros = tf.zeros(tf.stack([2, batch_size, units]), dtype=projected.dtype)
    _, hidden, _ = tf.while_loop(
        lambda time, hidden, cell: time < last_step,
        packed_step if pack_rows else full_step,
        (tf.constant(0), zeros, zeros),
    )
    hidden = tf.gather(hidden, place, axis=1)  # back to the batch's order
    return tf.concat([hidden[0], hidden[1]], axis=-1)


@keras.saving.register_keras_serializable(package="bilstm_kd")
class MaskedBiLSTM(keras.layers.Layer):
    """One bidirectional LSTM layer that returns the final state of each direction, respecting padding.

    The gates follow `keras.layers.LSTM` (input, forget, cell, output; sigmoid gates, tanh cell; forget
    bias initialised to 1). For a right-padded sentence of `n` words the forward direction reads words
    `0..n-1` and the backward direction reads `n-1..0`; padding never enters either state.

    Args:
        units: state size of each direction. The output has `2 * units` features: the forward final
            state, then the backward one.
        pack_rows: at each step, multiply only the rows still inside their sentence (see
            `bidirectional_recurrence`); the TFLite export turns it off.
        lstm_kernel: `"masked"` runs `bidirectional_recurrence`; `"cudnn"` runs the same weights through two
            `keras.layers.LSTM` (forward, and backward with `go_backwards`), which use cuDNN's fused kernel on
            a GPU and Keras' generic loop elsewhere; `"auto"` (default) picks cuDNN when TensorFlow sees a
            GPU. Both give the same function (tested to 1e-5, outputs and gradients) and the same weights.

    Call arguments:
        inputs: float tensor `[batch, time, features]`.
        mask: optional boolean tensor `[batch, time]`, `True` at words; it must be right-padded (a prefix
            of `True` per row). Without a mask every step is a word.

    Example:
    >>> encoder = MaskedBiLSTM(units=4)
    >>> encoder(np.ones((2, 5, 3), "float32"), mask=np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)).shape
    TensorShape([2, 8])
    """

    def __init__(self, units: int, pack_rows: bool = True, lstm_kernel: str = "auto", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        if lstm_kernel not in LSTM_KERNELS:
            raise ValueError(f"`lstm_kernel` must be one of {LSTM_KERNELS}, received lstm_kernel={lstm_kernel!r}")
        self.units = units
        self.pack_rows = pack_rows
        self.lstm_kernel = lstm_kernel
        self.supports_masking = True
        self._keras_lstms: _KerasLSTMs | None = None

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"MaskedBiLSTM needs a known feature size, received input_shape={input_shape}")
        units = self.units
        # Input kernels of both directions side by side: one matrix product covers every step.
        self.kernel = self.add_weight(name="kernel", shape=(input_dim, 2 * 4 * units), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(2, units, 4 * units), initializer=self._recurrent_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(2 * 4 * units,), initializer=self._bias_initializer)
        if self.uses_cudnn:
            self._keras_lstms = _KerasLSTMs(units, input_dim)

    @property
    def uses_cudnn(self) -> bool:
        """Whether `call` runs Keras' `LSTM` (cuDNN on a GPU) rather than `bidirectional_recurrence`."""
        return self.lstm_kernel == "cudnn" or (self.lstm_kernel == "auto" and has_gpu())

    def _recurrent_initializer(self, shape, dtype=None):
        orthogonal = keras.initializers.Orthogonal()
        return keras.ops.stack([orthogonal((shape[1], shape[2]), dtype=dtype) for _ in range(shape[0])])

    def _bias_initializer(self, shape, dtype=None):
        units = self.units
        one_direction = np.concatenate([np.zeros(units), np.ones(units), np.zeros(2 * units)])
        return keras.ops.convert_to_tensor(np.tile(one_direction, 2), dtype=dtype)

    def call(self, inputs, mask=None):
        inputs = tf.convert_to_tensor(inputs)
        batch_size, num_steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
        mask = tf.ones([batch_size, num_steps], tf.bool) if mask is None else tf.cast(mask, tf.bool)
        if self._keras_lstms is not None:
            weights = (tf.convert_to_tensor(weight) for weight in (self.kernel, self.recurrent_kernel, self.bias))
            return self._keras_lstms(inputs, mask, *weights)
        # Only the words are projected: in a batch padded to its longest sentence, most positions are padding
        # (60% on SST-2 dev in batches of 512), and the input projection is the largest matrix product.
        words = Words.of(mask)
        projected = tf.matmul(tf.gather_nd(inputs, words.positions), tf.convert_to_tensor(self.kernel)) + self.bias
        return bidirectional_recurrence(projected, words, tf.convert_to_tensor(self.recurrent_kernel), self.pack_rows)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "pack_rows": self.pack_rows, "lstm_kernel": self.lstm_kernel})
        return config


class _KerasLSTMs:
    """Keras' `LSTM` for each direction, run on `MaskedBiLSTM`'s weights with `stateless_call`.

    A plain object, so Keras does not track the two layers: their own variables are never read, and the
    student's weights (and its saved format) stay `MaskedBiLSTM`'s whatever the kernel. Keras' LSTM uses
    cuDNN when it can: on a GPU, with the standard activations and a right-padded mask, as here.
    """

    def __init__(self, units: int, input_dim: int):
        self.units = units
        self.directions = [
            keras.layers.LSTM(units, return_state=True, go_backwards=backward, name=f"cudnn_{name}")
            for backward, name in ((False, "forward"), (True, "backward"))
        ]
        for lstm in self.directions:
            lstm.build((None, None, input_dim))

    def __call__(self, inputs, mask, kernel, recurrent_kernel, bias):
        gates = 4 * self.units
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        # cuDNN rejects a row without words: such a row reads its first position and is zeroed after, as
        # `bidirectional_recurrence` leaves it.
        empty = tf.equal(lengths, 0)
        mask = tf.logical_or(mask, tf.logical_and(empty[:, None], tf.equal(tf.range(tf.shape(mask)[1]), 0)[None]))
        states = []
        for direction, lstm in enumerate(self.directions):
            weights = [
                kernel[:, direction * gates : (direction + 1) * gates],
                recurrent_kernel[direction],
                bias[direction * gates : (direction + 1) * gates],
            ]
            seeds = [variable.value for variable in lstm.non_trainable_variables]
            (_, hidden, _), _ = lstm.stateless_call(weights, seeds, inputs, mask=mask)
            states.append(hidden)
        encoding = tf.concat(states, axis=-1)
        return tf.where(empty[:, None], tf.zeros_like(encoding), encoding)


@keras.saving.register_keras_serializable(package="bilstm_kd")
class StudentEmbedding(keras.layers.Layer):
    """Word embeddings, optionally "multichannel" (Kim, 2014): a frozen and a trainable copy, concatenated.

    Pretrained vectors are not part of the config (they are large): build the layer, then call
    `set_embedding_weights(matrix)`; with `multichannel=True` both copies start from the matrix.

    Args:
        vocabulary_size: number of word ids, padding (0) included.
        embedding_dim: size of each copy's vectors.
        multichannel: add a frozen copy; the output then has `2 * embedding_dim` features.

    Example:
    >>> embedding = StudentEmbedding(vocabulary_size=10, embedding_dim=3)
    >>> embedding(np.array([[4, 2, 0]])).shape
    TensorShape([1, 3, 6])
    """

    def __init__(self, vocabulary_size: int, embedding_dim: int, multichannel: bool = True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("embedding_dim", embedding_dim)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.multichannel = multichannel
        self.trainable_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="trainable_embedding")
        self.frozen_embedding = None
        if multichannel:
            self.frozen_embedding = keras.layers.Embedding(
                vocabulary_size, embedding_dim, trainable=False, name="frozen_embedding"
            )

    def build(self, input_shape):
        self.trainable_embedding.build(input_shape)
        if self.frozen_embedding is not None:
            self.frozen_embedding.build(input_shape)

    def call(self, token_ids):
        vectors = self.trainable_embedding(token_ids)
        if self.frozen_embedding is not None:
            vectors = keras.ops.concatenate([self.frozen_embedding(token_ids), vectors], axis=-1)
        return vectors

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    @property
    def output_dim(self) -> int:
        return self.embedding_dim * (2 if self.multichannel else 1)

    def set_embedding_weights(self, matrix: np.ndarray) -> None:
        """Sets the word vectors of every copy to `matrix` (`[vocabulary_size, embedding_dim]`)."""
        matrix = np.asarray(matrix, dtype="float32")
        expected = (self.vocabulary_size, self.embedding_dim)
        if matrix.shape != expected:
            raise ValueError(
                f"The embedding matrix must have shape (vocabulary_size, embedding_dim) = {expected}, "
                f"received shape {matrix.shape}"
            )
        if not self.built:
            self.build((None, None))
        self.trainable_embedding.embeddings.assign(matrix)
        if self.frozen_embedding is not None:
            self.frozen_embedding.embeddings.assign(matrix)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "multichannel": self.multichannel,
            }
        )
        return config
