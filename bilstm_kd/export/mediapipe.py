"""The student as one file for MediaPipe Tasks' `TextClassifier` (Android, iOS, web, Python): text in, scores out.

What that runtime accepts (measured, see docs/deployment.md, "On a phone"): one subgraph of builtin ops (no WHILE
loop), one int32 input `[1, length]`, and TFLite Model Metadata inside the file naming a regex tokenizer
(its delimiter and a `token id` vocabulary with `<PAD>` and `<UNKNOWN>`) and the labels. The runtime splits
the text at the delimiter, looks each piece up as it is, truncates and right-pads; this module writes the
vocabulary of the student's `regex` tokenizer (`text.vocab`), so the ids equal the training-time ids.

The encoder is unrolled over the fixed length: a static graph runs every step, so the cost grows with
`length` and the recurrence is all that is left in each step: the word vectors are folded into the LSTM
input projection (`student.folding`), both directions share one batched matrix product, and the gates are
reordered to (input, forget, output, cell) so one sigmoid and one tanh cover them. TFLite's fused
UNIDIRECTIONAL_SEQUENCE_LSTM was measured and rejected: it keeps its state between calls (each call starts
from the last sentence's state) and, without folding, costs 1.6 ms for 20 words against 0.7 ms unrolled
at length 32 (`benchmarks/mobile.py`).
"""

from __future__ import annotations

import gc
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import Task
from bilstm_kd.export import QUANTIZATIONS
from bilstm_kd.export.common import ID_INPUT_SINGLE, check_student_matches, convert_keras_model, vocabulary_tokens
from bilstm_kd.export.tflite import tflite_input_length
from bilstm_kd.student.folding import gate_table, word_vectors
from bilstm_kd.student.layers import check_positive_int
from bilstm_kd.text.vocab import MASK, PAD_ID, RUNTIME_DELIMITER, UNK_ID, Vocabulary, WordTokenizer, lookup_table

FILE_NAME = "student_mediapipe.tflite"
RUNTIME_PAD, RUNTIME_UNKNOWN = "<PAD>", "<UNKNOWN>"  # the runtime requires these two spellings


def mediapipe_length(word_counts: Sequence[int], max_length: int, percentile: float = 99.0) -> int:
    """The fixed length for the MediaPipe model: the `percentile` of the sentences' word counts, rounded up
    to a multiple of 8, at most `max_length` (the student's)."""
    check_positive_int("max_length", max_length)
    if len(word_counts) == 0:
        return min(8, max_length)
    length = int(np.ceil(np.percentile(np.asarray(word_counts), percentile)))
    return int(min(max_length, max(8, -(-length // 8) * 8)))


def runtime_vocabulary(vocabulary: Vocabulary | Sequence[str]) -> list[tuple[str, int]]:
    """The runtime's `token id` lines: `<PAD>`, `<UNKNOWN>`, then every spelling of every word
    (`text.vocab.lookup_table` of the `regex` tokenizer, MASK among them) with its word's id."""
    spellings = lookup_table(vocabulary_tokens(vocabulary), "regex")
    return [(RUNTIME_PAD, PAD_ID), (RUNTIME_UNKNOWN, UNK_ID), *(entry for entry in spellings if entry[0] != MASK)]


def _input_forget_output_cell(columns: np.ndarray, units: int) -> np.ndarray:
    """Reorders the last axis of each direction's `4 * units` gate columns from Keras' (input, forget,
    cell, output) to (input, forget, output, cell)."""
    order = np.concatenate([np.arange(0, 2 * units), np.arange(3 * units, 4 * units), np.arange(2 * units, 3 * units)])
    directions = columns.shape[-1] // (4 * units)
    blocks = columns.reshape(*columns.shape[:-1], directions, 4 * units)[..., order]
    return blocks.reshape(columns.shape)


@keras.saving.register_keras_serializable(package="bilstm_kd")
class UnrolledBiLSTM(keras.layers.Layer):
    """The students' encoder for a fixed-length, single-sentence input, as straight-line builtin TFLite ops.

    Reads word ids `[1, length]` (right-padded, 0 = padding) and returns the `[1, 2 * units]` encoding of
    `MaskedBiLSTM`: every step runs for each direction; the forward state is read at the last word, the
    backward direction reads the words reversed within their length (`tf.reverse_sequence`).

    Args:
        length: the fixed number of word ids.
        units: state size of each direction.
        vocabulary_size: number of word ids.
        input_dim: size of the word vectors, or 0 for a folded table of `8 * units` gate columns per word.
    """

    def __init__(self, length: int, units: int, vocabulary_size: int, input_dim: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.length, self.units, self.vocabulary_size, self.input_dim = length, units, vocabulary_size, input_dim

    def build(self, input_shape=None):
        units = self.units
        width = self.input_dim or 8 * units
        self.table = self.add_weight(name="table", shape=(self.vocabulary_size, width), trainable=False)
        if self.input_dim:
            self.kernel = self.add_weight(name="kernel", shape=(self.input_dim, 8 * units), trainable=False)
            self.bias = self.add_weight(name="bias", shape=(8 * units,), trainable=False)
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(2, units, 4 * units), trainable=False)

    def set_from(self, student: keras.Model, fold: bool) -> None:
        """Copies the student's weights, gates reordered, folded or not (`fold` must match `input_dim == 0`)."""
        if fold != (self.input_dim == 0):
            raise ValueError(f"fold={fold} does not match this layer's input_dim={self.input_dim} (0: folded)")
        if not self.built:
            self.build()
        units, encoder = self.units, student.encoder
        if fold:
            self.table.assign(_input_forget_output_cell(gate_table(student), units))
        else:
            self.table.assign(word_vectors(student))
            self.kernel.assign(_input_forget_output_cell(np.asarray(encoder.kernel), units))
            self.bias.assign(_input_forget_output_cell(np.asarray(encoder.bias), units))
        self.recurrent_kernel.assign(_input_forget_output_cell(np.asarray(encoder.recurrent_kernel), units))

    def call(self, token_ids):
        units = self.units
        token_ids = tf.convert_to_tensor(token_ids, tf.int32)
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(token_ids, PAD_ID), tf.int32), axis=1)  # [1]
        gates = tf.gather(tf.convert_to_tensor(self.table), token_ids)  # [1, length, width]
        if self.input_dim:
            gates = tf.matmul(gates, tf.convert_to_tensor(self.kernel)) + self.bias
        forward, backward = tf.split(gates, 2, axis=-1)
        backward = tf.reverse_sequence(backward, lengths, seq_axis=1, batch_axis=0)
        steps = tf.unstack(tf.stack([forward[0], backward[0]], axis=1)[:, :, None, :])  # length x [2, 1, 4 units]
        recurrent_kernel = tf.convert_to_tensor(self.recurrent_kernel)
        hidden = cell = tf.zeros([2, 1, units])
        states = []
        for step in steps:
            step_gates = step + tf.matmul(hidden, recurrent_kernel)
            sigmoids, candidate = tf.sigmoid(step_gates[..., : 3 * units]), tf.tanh(step_gates[..., 3 * units :])
            cell = sigmoids[..., units : 2 * units] * cell + sigmoids[..., :units] * candidate
            hidden = sigmoids[..., 2 * units :] * tf.tanh(cell)
            states.append(hidden)
        last = tf.gather(tf.stack(states), tf.maximum(lengths[0] - 1, 0))  # [2, 1, units]
        encoding = tf.concat([last[0], last[1]], axis=-1)
        return encoding * tf.cast(lengths[0] > 0, encoding.dtype)  # an empty sentence encodes as zeros

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "length": self.length,
                "units": self.units,
                "vocabulary_size": self.vocabulary_size,
                "input_dim": self.input_dim,
            }
        )
        return config


def mobile_model(student: keras.Model, length: int, fold: bool = True) -> keras.Model:
    """The single-sentence student at a fixed `length` with an unrolled encoder: ids `[1, length]` in,
    probabilities `[1, classes]` out. It shares the student's classifier layers."""
    check_positive_int("length", length)
    if len(student.inputs) != 1:
        raise ValueError(
            "MediaPipe's TextClassifier takes one text: a sentence-pair student cannot be exported for it "
            "(use student.tflite, which takes two id inputs)"
        )
    input_dim = 0 if fold else int(student.embedding.output_dim)
    encoder = UnrolledBiLSTM(length, student.lstm_units, student.vocabulary_size, input_dim, name="unrolled_encoder")
    encoder.set_from(student, fold)
    token_ids = keras.Input(shape=(length,), batch_size=1, dtype="int32", name=ID_INPUT_SINGLE)
    probabilities = keras.ops.softmax(student.classify((encoder(token_ids),)), axis=-1)
    return keras.Model(token_ids, {"probabilities": probabilities}, name=f"{student.name}_mobile")


def _metadata_writers():
    """MediaPipe's metadata writer modules (`metadata_writer`, `text_classifier`).

    Workaround, kept here only: the writer's `metadata.py` imports a compiled helper,
    `mediapipe.tasks.cc.metadata.python._pywrap_metadata_version`, that the mediapipe wheels from 0.10.30 on
    (1.2.3 included) do not ship, so the import fails. The writer uses one function of it,
    `GetMinimumMetadataParserVersion(buffer)`, to stamp the oldest metadata parser that can read the file.
    The newest field this module writes is `RegexTokenizerOptions`, which metadata_schema.fbs dates to
    1.2.1, so that is the version stamped. When the helper is importable it is used as it is.
    """
    helper = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        __import__(helper)
    except ImportError:
        parts = helper.split(".")
        for depth in range(3, len(parts)):  # mediapipe.tasks.cc, ...cc.metadata, ...cc.metadata.python
            name = ".".join(parts[:depth])
            sys.modules.setdefault(name, types.ModuleType(name)).__path__ = []
        module = types.ModuleType(helper)
        module.GetMinimumMetadataParserVersion = lambda buffer: "1.2.1"
        sys.modules[helper] = module
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, text_classifier

    return metadata_writer, text_classifier


def metadata_writer_available() -> bool:
    try:
        _metadata_writers()
    except ImportError:
        return False
    return True


def export_mediapipe(
    student: keras.Model,
    task: Task,
    vocabulary: Vocabulary | Sequence[str],
    length: int,
    path: str | os.PathLike,
    quantization: str = "none",
    fold: bool = True,
) -> str:
    """Writes the single-sentence student as a MediaPipe `TextClassifier` model with its metadata inside.

    The student must use the `regex` tokenizer (`--tokenizer=regex`): the runtime can only split at a
    delimiter and look pieces up. The runtime vocabulary packed into the model is also
    written beside it, as `vocab_mediapipe.txt`.

    Args:
        student: the trained single-sentence student.
        task: the task (its label names become the categories).
        vocabulary: the student's vocabulary (of the regex tokenizer).
        length: the fixed number of words (`mediapipe_length`); longer sentences are truncated.
        path: the `.tflite` file to write.
        quantization: `QUANTIZATIONS`: float32, float16 or dynamic-range int8 weights.
        fold: fold the word vectors into the input projection (`student.folding`); unfolded, every
            position of `length` pays for the input matrix product.

    Raises:
        ImportError: the `mediapipe` package (its metadata writer) is not installed; `pip install .[mobile]`.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}, received quantization={quantization!r}")
    tokens = vocabulary_tokens(vocabulary)
    check_student_matches(student, task, len(tokens))
    try:
        metadata_writer, text_classifier = _metadata_writers()
    except ImportError as error:
        raise ImportError(
            f"{error}. The MediaPipe export needs the mediapipe package: pip install '.[mobile]'"
        ) from None
    flatbuffer = convert_keras_model(mobile_model(student, length, fold), quantization, f"length={length}")

    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    vocabulary_file = os.path.join(directory, "vocab_mediapipe.txt")
    with open(vocabulary_file, "w", encoding="utf-8") as file:
        file.writelines(f"{spelling} {index}\n" for spelling, index in runtime_vocabulary(tokens))
    labels = metadata_writer.Labels().add(list(task.label_names))  # one label file, class-id order
    writer = text_classifier.MetadataWriter.create_for_regex_model(
        bytearray(flatbuffer), metadata_writer.RegexTokenizer(RUNTIME_DELIMITER, vocabulary_file), labels
    )
    model_with_metadata, _ = writer.populate()
    # The writer sits in a reference cycle; collected at interpreter exit, its __del__ fails (os is gone).
    del writer
    gc.collect()
    with open(path, "wb") as file:
        file.write(model_with_metadata)
    return path


def mediapipe_available() -> bool:
    """Whether the `mediapipe` package (the runtime, for `classify_with_mediapipe`) is installed."""
    try:
        from mediapipe.tasks.python import text  # noqa: F401
    except ImportError:
        return False
    return True


def classify_with_mediapipe(path: str | os.PathLike, texts: Sequence[str], num_classes: int) -> np.ndarray:
    """MediaPipe `TextClassifier` scores `[len(texts), num_classes]` (in class-id order) for raw texts."""
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = text.TextClassifierOptions(base_options=BaseOptions(model_asset_path=os.fspath(path)))
    scores = np.zeros((len(texts), num_classes), "float32")
    with text.TextClassifier.create_from_options(options) as classifier:
        for row, sentence in enumerate(texts):
            for category in classifier.classify(str(sentence)).classifications[0].categories:
                scores[row, category.index] = category.score
    return scores


def label_names(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names packed in a MediaPipe file, in class-id order (read by classifying an empty text)."""
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = text.TextClassifierOptions(base_options=BaseOptions(model_asset_path=os.fspath(path)))
    with text.TextClassifier.create_from_options(options) as classifier:
        categories = classifier.classify("").classifications[0].categories
    return tuple(category.category_name for category in sorted(categories, key=lambda category: category.index))


def subgraph_count(path: str | os.PathLike) -> int:
    """How many subgraphs the TFLite file has (MediaPipe's TextClassifier takes only one)."""
    from mediapipe.tasks.metadata import schema_py_generated

    with open(path, "rb") as file:
        return schema_py_generated.Model.GetRootAsModel(file.read(), 0).SubgraphsLength()


def interpreter_probabilities(path: str | os.PathLike, ids: np.ndarray) -> np.ndarray:
    """The MediaPipe model's probabilities on the plain LiteRT interpreter, one sentence of ids at a time."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=os.fspath(path)).get_signature_runner()
    return np.concatenate([runner(**{ID_INPUT_SINGLE: row[None].astype("int32")})["probabilities"] for row in ids])


def verify_mediapipe(
    path: str | os.PathLike,
    student: keras.Model,
    vocabulary: Vocabulary | Sequence[str],
    texts: Sequence[str],
    labels: np.ndarray | None = None,
    task: Task | None = None,
) -> dict[str, Any]:
    """Runs the file in MediaPipe's `TextClassifier` on raw `texts` and compares it with the Keras student
    fed the training-time tokenizer's ids at the model's length.

    The runtime reads a text up to its first NUL character (it takes a C string), so both sides are given the
    texts cut there (`cut_at_nul` counts them): the check is of the model and its tokenizer, not of that API.

    Returns:
        `label_agreement`, `max_abs_diff` of the probabilities, `examples`, `length`, `truncated` (the share of
        texts longer than it), `cut_at_nul` and, with `labels` and `task`, the runtime's `scores` on them.
    """
    length = tflite_input_length(path)
    texts = [str(text) for text in texts]
    cut_at_nul = sum("\x00" in text for text in texts)
    texts = [text.partition("\x00")[0] for text in texts]
    full = WordTokenizer(vocabulary_tokens(vocabulary), 100_000, tokenizer="regex")(tf.constant(texts))
    truncated = float(np.mean(np.sum(np.asarray(full) != PAD_ID, axis=1) > length)) if texts else 0.0
    ids = WordTokenizer(vocabulary_tokens(vocabulary), length, pad_to_max_length=True, tokenizer="regex")(
        tf.constant(texts)
    ).numpy()
    keras_probabilities = tf.nn.softmax(student(ids, training=False), axis=-1).numpy()
    runtime = classify_with_mediapipe(path, texts, keras_probabilities.shape[1])
    result: dict[str, Any] = {
        "label_agreement": float(np.mean(runtime.argmax(-1) == keras_probabilities.argmax(-1))),
        "max_abs_diff": float(np.max(np.abs(runtime - keras_probabilities))),
        "examples": len(texts),
        "length": length,
        "truncated": round(truncated, 4),
        "cut_at_nul": cut_at_nul,
    }
    if labels is not None and task is not None:
        result["scores"] = task.evaluate(np.asarray(labels), runtime.argmax(-1))
    return result
