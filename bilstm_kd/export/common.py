"""What the exports share: the student's inputs as texts or ids, checks that student, task and vocabulary agree, and
the TFLite converter (which also makes the teacher's int8 copy for labelling, `teacher.lite`)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import Task
from bilstm_kd.text.vocab import Vocabulary

TEXT_INPUTS = ("text_a", "text_b")
ID_INPUTS_PAIR = ("token_ids_a", "token_ids_b")
ID_INPUT_SINGLE = "token_ids"

Texts = Sequence[str] | np.ndarray
TextInputs = Texts | tuple[Texts, Texts]


def vocabulary_tokens(vocabulary: Vocabulary | Sequence[str]) -> tuple[str, ...]:
    return vocabulary.tokens if isinstance(vocabulary, Vocabulary) else tuple(vocabulary)


def is_pair(student: keras.Model) -> bool:
    return len(student.inputs) == 2


def check_max_length(max_length: int) -> None:
    if not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise ValueError(f"`max_length` must be a positive integer, received max_length={max_length!r}")


def check_student_matches(student: keras.Model, task: Task, vocabulary_size: int) -> None:
    if is_pair(student) != task.is_pair:
        kind = "sentence-pair" if task.is_pair else "single-sentence"
        raise ValueError(f"Task {task.name!r} is {kind} but the student has {len(student.inputs)} input(s)")
    num_classes = getattr(student, "num_classes", task.num_classes)
    if num_classes != task.num_classes:
        raise ValueError(f"Task {task.name!r} has {task.num_classes} classes, the student {num_classes}")
    student_vocabulary = getattr(student, "vocabulary_size", vocabulary_size)
    if student_vocabulary != vocabulary_size:
        raise ValueError(
            f"The vocabulary has {vocabulary_size} tokens but the student embeds {student_vocabulary} word ids"
        )


def as_text_batches(texts: TextInputs, is_pair: bool) -> tuple[np.ndarray, ...]:
    if is_pair:
        if not (isinstance(texts, tuple) and len(texts) == 2):
            raise ValueError("A sentence-pair model needs texts as a tuple (texts_a, texts_b)")
        columns = tuple(np.asarray(column, dtype=object) for column in texts)
        if len(columns[0]) != len(columns[1]):
            raise ValueError(f"texts_a and texts_b differ in length: {len(columns[0])} vs {len(columns[1])}")
        return columns
    return (np.asarray(texts, dtype=object),)


def write_labels(directory: str, label_names: Sequence[str]) -> str:
    """`labels.txt` in `directory`: the class names in class-id order, one a line. Returns its path."""
    path = os.path.join(directory, "labels.txt")
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(f"{label}\n" for label in label_names)
    return path


def convert_keras_model(model: keras.Model, quantization: str, setting: str = "") -> bytes:
    """A Keras model of fixed input shapes as a TFLite flatbuffer of builtin ops, weights quantized as asked.

    Converting a Keras model (rather than a concrete function) freezes the weights into constants; a concrete
    function keeps them as resource variables, which the interpreter leaves uninitialised.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # Builtin ops only: the plain LiteRT interpreter (and MediaPipe) has no Flex (TensorFlow) kernels.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        # The converter saves the model first and prints the saved signatures to stdout: keep stdout clean
        # for callers that print results (benchmarks print JSON).
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()
    except Exception as error:  # the converter raises many types; say which model and setting failed
        raise RuntimeError(
            f"TFLite conversion of {model.name} (quantization={quantization!r}{', ' + setting if setting else ''}) "
            f"failed: {error}"
        ) from error
