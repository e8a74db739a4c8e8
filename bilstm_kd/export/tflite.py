"""The student as TFLite (mobile): word ids in at a fixed length, logits out, builtin ops only.

Inputs `token_ids` int32[batch, max_length] (pairs: `token_ids_a`, `token_ids_b`), output `logits`, so the
plain LiteRT interpreter runs it. Tokenization stays outside (regular-expression ops do not convert):
beside `student.tflite` go `vocab.txt`, `labels.txt` and `student.metadata.json` with the tokenization rules
(`text.vocab.tokenization_rules`), the labels, the maximum length and the special ids;
`tflite_predict_texts` tokenizes from those files alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import Task
from bilstm_kd.export import QUANTIZATIONS
from bilstm_kd.export.common import (
    ID_INPUT_SINGLE,
    ID_INPUTS_PAIR,
    TextInputs,
    as_text_batches,
    check_max_length,
    check_student_matches,
    convert_keras_model,
    vocabulary_tokens,
    write_labels,
)
from bilstm_kd.student.folding import inference_model
from bilstm_kd.text.vocab import MASK_ID, PAD_ID, UNK_ID, Vocabulary, WordTokenizer, tokenization_rules


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
    tokenizer: str = "glue",
    fold: bool = False,
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
        tokenizer: the student's tokenizer (`text.vocab.TOKENIZERS`), written to the metadata.
        fold: convert the student with its word vectors folded into the LSTM input projection
            (`student.folding.fold_student`): a table lookup replaces the largest matrix product.

    Returns:
        `path`, as a string.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}, received quantization={quantization!r}")
    check_max_length(max_length)
    tokens = vocabulary_tokens(vocabulary)
    check_student_matches(student, task, len(tokens))
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)

    input_names = ID_INPUTS_PAIR if task.is_pair else (ID_INPUT_SINGLE,)
    # One sentence at a time on a phone: packing rows by length (for batches) costs more than it saves there.
    model = inference_model(student, fold=fold, pack_rows=False)
    flatbuffer = _convert(model, input_names, max_length, quantization)
    with open(path, "wb") as file:
        file.write(flatbuffer)

    _write_side_files(path, task, tokens, input_names, max_length, quantization, tokenizer, fold)
    return path


def _convert(student: keras.Model, input_names: Sequence[str], max_length: int, quantization: str) -> bytes:
    """The student at a fixed length as a TFLite flatbuffer of builtin ops."""
    # A functional wrapper fixes the sequence length and names inputs and output.
    id_inputs = [keras.Input(shape=(max_length,), dtype="int32", name=name) for name in input_names]
    logits = student(tuple(id_inputs) if len(id_inputs) == 2 else id_inputs[0], training=False)
    fixed_length_model = keras.Model(id_inputs, {"logits": logits}, name=f"{student.name}_fixed_length")
    return convert_keras_model(fixed_length_model, quantization, f"max_length={max_length}")


def _write_side_files(
    path: str,
    task: Task,
    tokens: Sequence[str],
    input_names: Sequence[str],
    max_length: int,
    quantization: str,
    tokenizer: str,
    fold: bool,
) -> None:
    """`vocab.txt`, `labels.txt` and `<name>.metadata.json` beside the model: what an app needs to tokenize."""
    directory = os.path.dirname(path) or "."
    Vocabulary(tokens).save(os.path.join(directory, "vocab.txt"))
    write_labels(directory, task.label_names)
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
        "tokenizer": tokenizer,
        "tokenization_rules": [list(rule) for rule in tokenization_rules(tokenizer)],
        "tokenization_notes": _TOKENIZATION_NOTES[tokenizer],
        "quantization": quantization,
        "folded": fold,
    }
    with open(metadata_path(path), "w", encoding="utf-8") as file:
        json.dump(metadata, file, indent=2)


_TOKENIZATION_NOTES = {
    "glue": (
        "Apply the rules in order (regular-expression replacements and lowercasing), split on spaces, "
        "map the placeholder token back to [MASK]. Look each word up in vocab.txt in Unicode NFC (line "
        "number = id, unknown words -> unknown_id), keep the first max_length ids and pad with padding_id "
        "at the end."
    ),
    "regex": (
        "Split the text at every match of the regular expression (RE2), dropping empty pieces; do not "
        "lowercase. Look each word up in vocab.txt in Unicode NFC (line number = id) as it is, then with its "
        "first letter upper case, then fully upper case, against the lowercase words (unknown -> unknown_id); keep the "
        "first max_length ids and pad with padding_id at the end. student_mediapipe.tflite carries this "
        "tokenizer inside it."
    ),
}


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


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `<name>.metadata.json` written beside a `.tflite` model by `export_tflite`."""
    side_file = metadata_path(path)
    if not os.path.exists(side_file):
        raise FileNotFoundError(f"{side_file} is missing: it is written beside {os.fspath(path)} by export_tflite")
    with open(side_file, encoding="utf-8") as file:
        return json.load(file)


def tflite_predict_texts(path: str | os.PathLike, texts: TextInputs) -> np.ndarray:
    """TFLite logits for raw strings, tokenized from the `vocab.txt` and metadata written beside the model."""
    metadata = read_metadata(path)
    vocabulary = Vocabulary.load(os.path.join(os.path.dirname(os.fspath(path)) or ".", metadata["vocabulary_file"]))
    tokenizer = WordTokenizer(
        vocabulary.tokens, metadata["max_length"], pad_to_max_length=True, tokenizer=metadata.get("tokenizer", "glue")
    )
    columns = as_text_batches(texts, len(metadata["inputs"]) == 2)
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
