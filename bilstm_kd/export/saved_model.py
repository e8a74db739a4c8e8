"""The student as a SavedModel (servers, Python): raw strings in, reloaded and checked against Keras.

Tokenization (`text.vocab.WordTokenizer`: the same TensorFlow ops as training) is inside the graph.
Signature `serve` (also `serving_default`):

    single sentence:  serve(text: string[batch])
    sentence pair:    serve(text_a: string[batch], text_b: string[batch])
    outputs:          logits float[batch, classes], probabilities float[batch, classes],
                      label int64[batch] (class id), label_name string[batch]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import Task
from bilstm_kd.export.common import (
    TEXT_INPUTS,
    TextInputs,
    as_text_batches,
    check_max_length,
    check_student_matches,
    is_pair,
    vocabulary_tokens,
)
from bilstm_kd.student.folding import fold_student
from bilstm_kd.text.vocab import Vocabulary, WordTokenizer


def export_saved_model(
    student: keras.Model,
    vocabulary: Vocabulary | Sequence[str],
    task: Task,
    max_length: int,
    path: str | os.PathLike,
    tokenizer: str = "glue",
    fold: bool = False,
) -> str:
    """Writes the student with its tokenizer as a SavedModel: raw strings in, probabilities and label out
    (`serve`), and the class names in class-id order (`labels`, no inputs).

    Args:
        student: the trained student (`distiller.student`, not the distiller).
        vocabulary: the student's vocabulary (a `Vocabulary` or its tokens).
        task: the task (labels, single sentence or pair).
        max_length: sentences are truncated to this many words, as in training.
        path: the SavedModel directory to write.
        tokenizer: the student's tokenizer (`text.vocab.TOKENIZERS`).
        fold: export the student with its word vectors folded into the LSTM input projection
            (`student.folding.fold_student`): faster, larger.

    Returns:
        `path`, as a string.
    """
    check_max_length(max_length)
    tokens = vocabulary_tokens(vocabulary)
    check_student_matches(student, task, len(tokens))
    if fold:
        student = fold_student(student)
    tokenizer = WordTokenizer(tokens, max_length, tokenizer=tokenizer, name="tokenizer")
    tokenizer(tf.constant([""]))  # builds it: an export archive only tracks built layers
    label_names = tf.constant(task.label_names)

    def outputs(logits) -> dict[str, tf.Tensor]:
        label = tf.argmax(logits, axis=-1)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "label": label,
            "label_name": tf.gather(label_names, label),
        }

    archive = keras.export.ExportArchive()
    archive.track(student)
    archive.track(tokenizer)
    if task.is_pair:

        def serve_texts(text_a, text_b):
            return outputs(student((tokenizer(text_a), tokenizer(text_b)), training=False))

        signature = [tf.TensorSpec([None], tf.string, name=name) for name in TEXT_INPUTS]
    else:

        def serve_texts(text):
            return outputs(student(tokenizer(text), training=False))

        signature = [tf.TensorSpec([None], tf.string, name="text")]
    archive.add_endpoint(name="serve", fn=serve_texts, input_signature=signature)
    archive.add_endpoint(name="labels", fn=lambda: label_names, input_signature=[])  # the class names, in order
    path = os.fspath(path)
    archive.write_out(path, verbose=False)
    return path


def saved_model_predict(path: str | os.PathLike, texts: TextInputs) -> dict[str, np.ndarray]:
    """Runs an exported SavedModel's `serve` signature on raw strings (pairs: `(texts_a, texts_b)`)."""
    loaded = tf.saved_model.load(os.fspath(path))
    return serve(loaded, texts)


def serve(loaded: Any, texts: TextInputs) -> dict[str, np.ndarray]:
    """A loaded SavedModel's `serve` outputs for raw strings (pairs: `(texts_a, texts_b)`), as NumPy arrays."""
    pair = "text_a" in loaded.signatures["serve"].structured_input_signature[1]
    columns = as_text_batches(texts, pair)
    result = loaded.serve(*(tf.constant(list(column), tf.string) for column in columns))
    return {name: value.numpy() for name, value in result.items()}


def verify_saved_model(
    path: str | os.PathLike,
    student: keras.Model,
    vocabulary: Vocabulary | Sequence[str],
    max_length: int,
    texts: TextInputs,
    batch_sizes: Sequence[int] = (1, 37),
    tokenizer: str = "glue",
) -> dict[str, Any]:
    """Reloads the SavedModel with `tf.saved_model.load` and compares it with the Keras student.

    Both see the same texts at each batch size (the texts are repeated when fewer than the batch size);
    `tokenizer` is the student's (`text.vocab.TOKENIZERS`).

    Returns:
        `max_abs_diff` of the probabilities, `label_agreement` of the predicted labels, `examples` compared
        and `batch_sizes`.
    """
    pair = is_pair(student)
    columns = as_text_batches(texts, pair)
    if len(columns[0]) == 0:
        raise ValueError("verify_saved_model needs at least one text")
    tokenizer = WordTokenizer(vocabulary_tokens(vocabulary), max_length, tokenizer=tokenizer)
    loaded = tf.saved_model.load(os.fspath(path))
    max_abs_diff, agreements = 0.0, []
    for batch_size in batch_sizes:
        repeats = -(-batch_size // len(columns[0]))
        batch = tuple(np.tile(column, repeats)[:batch_size] for column in columns)
        exported = serve(loaded, batch if pair else batch[0])
        ids = tuple(tokenizer(tf.constant(list(column), tf.string)) for column in batch)
        logits = student(ids if pair else ids[0], training=False)
        probabilities = tf.nn.softmax(logits, axis=-1).numpy()
        max_abs_diff = max(max_abs_diff, float(np.max(np.abs(probabilities - exported["probabilities"]))))
        agreements.append(np.argmax(probabilities, axis=-1) == exported["label"])
    agreement = np.concatenate(agreements)
    return {
        "max_abs_diff": max_abs_diff,
        "label_agreement": float(np.mean(agreement)),
        "examples": int(agreement.size),
        "batch_sizes": list(batch_sizes),
    }
