"""Folding a student's embeddings into its LSTM input projection, for inference.

A student's encoder multiplies every word vector by the LSTM input kernel of both directions: with the
paper's sizes (600-d multichannel vectors, 150 units) that is 720,000 of the 900,000 multiply-adds per word
and direction pair. The product depends on the word alone, so at export it can be computed once per
vocabulary word: `gate_table[word] = vectors[word] @ kernel + bias`, `[vocabulary, 2 * 4 * units]`. A
folded student then gathers a row per word and runs only the recurrence; its logits equal the student's up
to float rounding. The price is size: the table has `8 * units` columns per word where the embeddings
have `embedding_dim` (x2 multichannel): twice the paper's embeddings, `fold_pays` decides.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.student import FOLDINGS
from bilstm_kd.student.layers import MaskedBiLSTM, Words, bidirectional_recurrence, check_positive_int

# `auto` folds when the folded table stays under this many bytes (float32). The table replaces the
# embeddings and the input kernel; on phones a file of more than ~100 MB is rarely acceptable, and on a
# server the speed gain (no input projection, 2-3x at batch 512 for the paper's sizes) is worth the memory.
AUTO_FOLD_MAX_BYTES = 100 * 2**20


def word_vectors(student: keras.Model) -> np.ndarray:
    """Every vocabulary word's vector as the encoder sees it (both channels when multichannel)."""
    return np.asarray(student.embedding(np.arange(student.vocabulary_size, dtype="int32")[None]))[0]


def gate_table(student: keras.Model) -> np.ndarray:
    """Each vocabulary word's input-gate pre-activations of both directions, bias included:
    `[vocabulary_size, 2 * 4 * lstm_units]` float32."""
    encoder = student.encoder
    return (word_vectors(student) @ np.asarray(encoder.kernel) + np.asarray(encoder.bias)).astype("float32")


def folded_bytes(student: keras.Model) -> int:
    """The folded table's size in float32 bytes."""
    return 4 * student.vocabulary_size * 8 * student.lstm_units


def fold_pays(student: keras.Model, folding: str = "auto") -> bool:
    """Whether to fold: always for `fold`, never for `unfolded`; for `auto`, when the folded table stays
    under `AUTO_FOLD_MAX_BYTES` (the paper's SST-2 student: 14,748 words x 1,200 = 71 MB, folded)."""
    if folding not in FOLDINGS:
        raise ValueError(f"`folding` must be one of {FOLDINGS}, received folding={folding!r}")
    return folding == "fold" or (folding == "auto" and folded_bytes(student) <= AUTO_FOLD_MAX_BYTES)


@keras.saving.register_keras_serializable(package="bilstm_kd")
class FoldedBiLSTM(keras.layers.Layer):
    """`StudentEmbedding` followed by `MaskedBiLSTM`, with the input projection precomputed per word.

    Args:
        vocabulary_size: number of word ids, padding (0) included.
        units: state size of each direction.
        pack_rows: as in `MaskedBiLSTM`.

    Call arguments:
        token_ids: int32 `[batch, time]`, 0 = padding (right-padded).

    Returns the same `[batch, 2 * units]` encoding as the unfolded layers. Set the weights with
    `set_from(student)`.
    """

    def __init__(self, vocabulary_size: int, units: int, pack_rows: bool = True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("units", units)
        self.vocabulary_size = vocabulary_size
        self.units = units
        self.pack_rows = pack_rows

    def build(self, input_shape=None):
        self.gate_table = self.add_weight(
            name="gate_table", shape=(self.vocabulary_size, 8 * self.units), initializer="zeros", trainable=False
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(2, self.units, 4 * self.units), initializer="zeros", trainable=False
        )

    def set_from(self, student: keras.Model) -> None:
        """Copies a trained student's folded table and recurrent kernel."""
        if not self.built:
            self.build()
        self.gate_table.assign(gate_table(student))
        self.recurrent_kernel.assign(np.asarray(student.encoder.recurrent_kernel))

    def call(self, token_ids):
        token_ids = tf.convert_to_tensor(token_ids, tf.int32)
        words = Words.of(tf.not_equal(token_ids, 0))
        projected = tf.gather(tf.convert_to_tensor(self.gate_table), tf.gather_nd(token_ids, words.positions))
        return bidirectional_recurrence(projected, words, tf.convert_to_tensor(self.recurrent_kernel), self.pack_rows)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_size": self.vocabulary_size, "units": self.units, "pack_rows": self.pack_rows})
        return config


def fold_student(student: keras.Model, pack_rows: bool = True) -> keras.Model:
    """An inference copy of `student` with the input projection folded into a per-word table.

    The copy has the student's inputs (`token_ids`, or `token_ids_a`/`token_ids_b` for pairs), shares its
    classifier layers, and returns the same logits up to float rounding; it does not train (no dropout).
    """
    return inference_model(student, fold=True, pack_rows=pack_rows)


def inference_model(student: keras.Model, fold: bool, pack_rows: bool = True) -> keras.Model:
    """An inference copy of `student`, folded or not (`fold_student`), its encoder packing rows or not
    (`pack_rows`, see `layers.bidirectional_recurrence`). It shares the student's classifier layers."""
    inputs = [keras.Input(shape=(None,), dtype="int32", name=tensor.name) for tensor in student.inputs]
    if fold:
        encoder = FoldedBiLSTM(student.vocabulary_size, student.lstm_units, pack_rows, name="folded_encoder")
        encoder.set_from(student)

        def encode(token_ids):
            return encoder(token_ids)

    else:
        # The packed loop, not cuDNN: an export runs on any device.
        encoder = MaskedBiLSTM(student.lstm_units, pack_rows, lstm_kernel="masked", name="encoder")
        encoder.build((None, None, student.embedding.output_dim))
        encoder.set_weights(student.encoder.get_weights())

        def encode(token_ids):
            return encoder(student.embedding(token_ids), mask=keras.ops.not_equal(token_ids, 0))

    logits = student.classify(tuple(encode(token_ids) for token_ids in inputs))
    name = f"{student.name}_{'folded' if fold else 'inference'}"
    model = keras.Model(inputs if len(inputs) == 2 else inputs[0], logits, name=name)
    model.num_classes, model.vocabulary_size = student.num_classes, student.vocabulary_size
    return model
