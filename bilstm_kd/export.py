"""Exports of the trained student, each reloaded and checked against the Keras student.

SavedModel (servers, Python): raw strings in. Tokenization (`vocab.WordTokenizer`: the same TensorFlow
ops as training) is inside the graph. Signature `serve` (also `serving_default`):

    single sentence:  serve(text: string[batch])
    sentence pair:    serve(text_a: string[batch], text_b: string[batch])
    outputs:          logits float[batch, classes], probabilities float[batch, classes],
                      label int64[batch] (class id), label_name string[batch]

TFLite (mobile): word ids in, at a fixed length `max_length` (`token_ids` int32[batch, max_length], pairs:
`token_ids_a`, `token_ids_b`), `logits` out, builtin TFLite ops only, so the plain LiteRT interpreter runs
it. Tokenization stays outside (regular-expression ops do not convert): beside `student.tflite` go
`vocab.txt`, `labels.txt` and `student.metadata.json` with the tokenization rules (`vocab.TOKENIZATION_RULES`),
the labels, the maximum length and the special ids; `tflite_predict_texts` tokenizes from those files alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.tasks import Task
from bilstm_kd.vocab import MASK_ID, PAD_ID, TOKENIZATION_RULES, UNK_ID, Vocabulary, WordTokenizer

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
TEXT_INPUTS = ("text_a", "text_b")
ID_INPUTS_PAIR = ("token_ids_a", "token_ids_b")
ID_INPUT_SINGLE = "token_ids"

Texts = Sequence[str] | np.ndarray
TextInputs = Texts | tuple[Texts, Texts]


def _tokens(vocabulary: Vocabulary | Sequence[str]) -> tuple[str, ...]:
    return vocabulary.tokens if isinstance(vocabulary, Vocabulary) else tuple(vocabulary)


def _is_pair(student: keras.Model) -> bool:
    return len(student.inputs) == 2


def _check_max_length(max_length: int) -> None:
    if not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise ValueError(f"`max_length` must be a positive integer, received max_length={max_length!r}")


def _check_student_matches(student: keras.Model, task: Task, vocabulary_size: int) -> None:
    if _is_pair(student) != task.is_pair:
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


# --------------------------------------------------------------------------------------------------- SavedModel


def export_saved_model(
    student: keras.Model,
    vocabulary: Vocabulary | Sequence[str],
    task: Task,
    max_length: int,
    path: str | os.PathLike,
) -> str:
    """Writes the student with its tokenizer as a SavedModel: raw strings in, probabilities and label out.

    Args:
        student: the trained student (`distiller.student`, not the distiller).
        vocabulary: the student's vocabulary (a `Vocabulary` or its tokens).
        task: the task (labels, single sentence or pair).
        max_length: sentences are truncated to this many words, as in training.
        path: the SavedModel directory to write.

    Returns:
        `path`, as a string.
    """
    _check_max_length(max_length)
    tokens = _tokens(vocabulary)
    _check_student_matches(student, task, len(tokens))
    tokenizer = WordTokenizer(tokens, max_length, name="tokenizer")
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

        def serve(text_a, text_b):
            return outputs(student((tokenizer(text_a), tokenizer(text_b)), training=False))

        signature = [tf.TensorSpec([None], tf.string, name=name) for name in TEXT_INPUTS]
    else:

        def serve(text):
            return outputs(student(tokenizer(text), training=False))

        signature = [tf.TensorSpec([None], tf.string, name="text")]
    archive.add_endpoint(name="serve", fn=serve, input_signature=signature)
    path = os.fspath(path)
    archive.write_out(path, verbose=False)
    return path


def _as_text_batches(texts: TextInputs, is_pair: bool) -> tuple[np.ndarray, ...]:
    if is_pair:
        if not (isinstance(texts, tuple) and len(texts) == 2):
            raise ValueError("A sentence-pair model needs texts as a tuple (texts_a, texts_b)")
        columns = tuple(np.asarray(column, dtype=object) for column in texts)
        if len(columns[0]) != len(columns[1]):
            raise ValueError(f"texts_a and texts_b differ in length: {len(columns[0])} vs {len(columns[1])}")
        return columns
    return (np.asarray(texts, dtype=object),)


def saved_model_predict(path: str | os.PathLike, texts: TextInputs) -> dict[str, np.ndarray]:
    """Runs an exported SavedModel's `serve` signature on raw strings (pairs: `(texts_a, texts_b)`)."""
    loaded = tf.saved_model.load(os.fspath(path))
    return _serve(loaded, texts)


def _serve(loaded: Any, texts: TextInputs) -> dict[str, np.ndarray]:
    is_pair = "text_a" in loaded.signatures["serve"].structured_input_signature[1]
    columns = _as_text_batches(texts, is_pair)
    result = loaded.serve(*(tf.constant(list(column), tf.string) for column in columns))
    return {name: value.numpy() for name, value in result.items()}


def verify_saved_model(
    path: str | os.PathLike,
    student: keras.Model,
    vocabulary: Vocabulary | Sequence[str],
    max_length: int,
    texts: TextInputs,
    batch_sizes: Sequence[int] = (1, 37),
) -> dict[str, Any]:
    """Reloads the SavedModel with `tf.saved_model.load` and compares it with the Keras student.

    Both see the same texts at each batch size (the texts are repeated when fewer than the batch size).

    Returns:
        `max_abs_diff` of the probabilities, `label_agreement` of the predicted labels, `examples` compared
        and `batch_sizes`.
    """
    is_pair = _is_pair(student)
    columns = _as_text_batches(texts, is_pair)
    if len(columns[0]) == 0:
        raise ValueError("verify_saved_model needs at least one text")
    tokenizer = WordTokenizer(_tokens(vocabulary), max_length)
    loaded = tf.saved_model.load(os.fspath(path))
    max_abs_diff, agreements = 0.0, []
    for batch_size in batch_sizes:
        repeats = -(-batch_size // len(columns[0]))
        batch = tuple(np.tile(column, repeats)[:batch_size] for column in columns)
        exported = _serve(loaded, batch if is_pair else batch[0])
        ids = tuple(tokenizer(tf.constant(list(column), tf.string)) for column in batch)
        logits = student(ids if is_pair else ids[0], training=False)
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


# ------------------------------------------------------------------------------------------------------- TFLite


def metadata_path(tflite_path: str | os.PathLike) -> str:
    """`student.tflite` -> `student.metadata.json` beside it."""
    return os.path.splitext(os.fspath(tflite_path))[0] + ".metadata.json"


def export_tflite(
    student: keras.Model,
    task: Task,
    vocabulary: Vocabulary | Sequence[str],
    max_length: int,
    path: str | os.PathLike,
    quantization: str = "none",
) -> str:
    """Converts the student to TFLite with builtin ops only: word ids `[batch, max_length]` in, logits out.

    Writes `vocab.txt`, `labels.txt` and `<name>.metadata.json` beside `path`.

    Args:
        student: the trained student.
        task: the task (labels, single sentence or pair).
        vocabulary: the student's vocabulary.
        max_length: the fixed number of word ids per sentence (pad with 0, truncate longer sentences).
        path: the `.tflite` file to write.
        quantization: `"none"`, `"float16"` (float16 weights) or `"dynamic_int8"` (int8 weights, float
            activations).

    Returns:
        `path`, as a string.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}, received quantization={quantization!r}")
    _check_max_length(max_length)
    tokens = _tokens(vocabulary)
    _check_student_matches(student, task, len(tokens))
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)

    input_names = ID_INPUTS_PAIR if task.is_pair else (ID_INPUT_SINGLE,)
    # A functional wrapper fixes the sequence length and names inputs and output. Converting a Keras model
    # (rather than a concrete function) freezes the weights into constants; a concrete function keeps them
    # as resource variables, which the interpreter leaves uninitialised.
    id_inputs = [keras.Input(shape=(max_length,), dtype="int32", name=name) for name in input_names]
    logits = student(tuple(id_inputs) if task.is_pair else id_inputs[0], training=False)
    fixed_length_model = keras.Model(id_inputs, {"logits": logits}, name=f"{student.name}_fixed_length")
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed_length_model)
    # Builtin ops only: the plain LiteRT interpreter has no Flex (TensorFlow) kernels.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        # The converter saves the model first and prints the saved signatures to stdout: keep stdout clean
        # for callers that print results (benchmarks print JSON).
        with contextlib.redirect_stdout(io.StringIO()):
            flatbuffer = converter.convert()
    except Exception as error:  # the converter raises many types; say which model and setting failed
        raise RuntimeError(
            f"TFLite conversion of {student.name} (quantization={quantization!r}, max_length={max_length}) "
            f"failed: {error}"
        ) from error
    with open(path, "wb") as file:
        file.write(flatbuffer)

    Vocabulary(tokens).save(os.path.join(directory, "vocab.txt"))
    with open(os.path.join(directory, "labels.txt"), "w", encoding="utf-8") as file:
        file.writelines(f"{label}\n" for label in task.label_names)
    metadata = {
        "model": os.path.basename(path),
        "task": task.name,
        "inputs": list(input_names),
        "input_dtype": "int32",
        "output": "logits",
        "max_length": int(max_length),
        "padding_id": PAD_ID,
        "unknown_id": UNK_ID,
        "mask_id": MASK_ID,
        "vocabulary_file": "vocab.txt",
        "vocabulary_size": len(tokens),
        "labels": list(task.label_names),
        "labels_file": "labels.txt",
        "tokenization_rules": [list(rule) for rule in TOKENIZATION_RULES],
        "tokenization_notes": (
            "Apply the rules in order: lowercase, each regular-expression replacement, split on whitespace, "
            "map the placeholder token back to [MASK]. Look each word up in vocab.txt (line number = id, "
            "unknown words -> unknown_id), keep the first max_length ids and pad with padding_id at the end."
        ),
        "quantization": quantization,
    }
    with open(metadata_path(path), "w", encoding="utf-8") as file:
        json.dump(metadata, file, indent=2)
    return path


def _interpreter(path: str):
    from ai_edge_litert.interpreter import Interpreter

    if not os.path.exists(path):
        raise FileNotFoundError(f"No TFLite model at {path}")
    return Interpreter(model_path=path)


def tflite_operators(path: str | os.PathLike) -> list[str]:
    """The distinct operator names of a TFLite model (Flex ops show up as `Flex...` / custom ops)."""
    interpreter = _interpreter(os.fspath(path))
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def _fit_length(ids: np.ndarray, max_length: int) -> np.ndarray:
    ids = np.asarray(ids, dtype="int32")
    if ids.ndim != 2:
        raise ValueError(f"Word ids must be a 2-D [batch, length] array, received shape {ids.shape}")
    if ids.shape[1] >= max_length:
        return np.ascontiguousarray(ids[:, :max_length])
    return np.pad(ids, ((0, 0), (0, max_length - ids.shape[1])), constant_values=PAD_ID)


def tflite_predict(path: str | os.PathLike, ids: np.ndarray | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The TFLite model's logits for padded word ids (pairs: `(ids_a, ids_b)`), any batch size.

    Ids shorter than the model's `max_length` are padded with 0, longer ones truncated.
    """
    interpreter = _interpreter(os.fspath(path))
    runner = interpreter.get_signature_runner()
    input_details = runner.get_input_details()
    names = sorted(input_details)
    arrays = ids if isinstance(ids, tuple) else (ids,)
    if len(arrays) != len(names):
        raise ValueError(f"{path} takes {len(names)} id input(s) ({', '.join(names)}), received {len(arrays)}")
    max_length = int(input_details[names[0]]["shape_signature"][1])
    feeds = {name: _fit_length(array, max_length) for name, array in zip(names, arrays)}
    if len(feeds[names[0]]) == 0:
        return np.zeros((0, int(runner.get_output_details()["logits"]["shape_signature"][-1])), "float32")
    return runner(**feeds)["logits"]


def tflite_predict_texts(path: str | os.PathLike, texts: TextInputs) -> np.ndarray:
    """TFLite logits for raw strings, tokenized from the `vocab.txt` and metadata written beside the model."""
    with open(metadata_path(path), encoding="utf-8") as file:
        metadata = json.load(file)
    vocabulary = Vocabulary.load(os.path.join(os.path.dirname(os.fspath(path)) or ".", metadata["vocabulary_file"]))
    tokenizer = WordTokenizer(vocabulary.tokens, metadata["max_length"], pad_to_max_length=True)
    columns = _as_text_batches(texts, len(metadata["inputs"]) == 2)
    ids = tuple(tokenizer(tf.constant(list(column), tf.string)).numpy() for column in columns)
    return tflite_predict(path, ids if len(ids) == 2 else ids[0])


def verify_tflite(
    path: str | os.PathLike,
    student: keras.Model,
    ids: np.ndarray | tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Compares the TFLite model with the Keras student on the same word ids.

    Returns:
        `max_abs_diff` of the logits, `label_agreement` of the predicted labels, `examples` and the
        model's distinct `operators`, with `builtin_only` (no Flex or custom op).
    """
    tflite_logits = tflite_predict(path, ids)
    interpreter_inputs = tuple(np.asarray(array, "int32") for array in (ids if isinstance(ids, tuple) else (ids,)))
    max_length = tflite_input_length(path)
    fitted = tuple(_fit_length(array, max_length) for array in interpreter_inputs)
    keras_logits = np.asarray(student(fitted if len(fitted) == 2 else fitted[0], training=False))
    operators = tflite_operators(path)
    return {
        "max_abs_diff": float(np.max(np.abs(keras_logits - tflite_logits))) if len(keras_logits) else 0.0,
        "label_agreement": float(np.mean(keras_logits.argmax(-1) == tflite_logits.argmax(-1))),
        "examples": len(keras_logits),
        "operators": operators,
        "builtin_only": not any(name.startswith("Flex") or name == "CUSTOM" for name in operators),
    }


def tflite_input_length(path: str | os.PathLike) -> int:
    """The fixed number of word ids per sentence the TFLite model takes."""
    runner = _interpreter(os.fspath(path)).get_signature_runner()
    details = runner.get_input_details()
    return int(details[sorted(details)[0]]["shape_signature"][1])
