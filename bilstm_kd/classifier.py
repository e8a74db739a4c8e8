"""A trained classifier from its export: raw text in, labels and probabilities out.

    from bilstm_kd import load_classifier
    classifier = load_classifier("runs/mine")          # a run directory, its export/ or one exported model
    predictions = classifier.predict(["I loved it!", "Where is my card?"])
    predictions.labels, predictions.probabilities     # class names; [texts, classes], columns in label_names
    predictions[0].label, predictions[0].score         # one text's best class and its probability
    classifier.predict("I loved it!").top(3)           # one text in, one `Prediction` out: its 3 best classes

The exports give the same answers: the SavedModel tokenizes inside the graph, the TFLite model is fed ids
from the same tokenizer (`text.vocab.WordTokenizer`) built from the files written beside it, and the
MediaPipe file (`--tokenizer=regex`) runs in MediaPipe's `TextClassifier` with the tokenizer inside it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np

KINDS = ("auto", "saved_model", "tflite", "mediapipe")


def top_classes(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the `k` most probable classes along the last axis, most probable first (ties: the lower id),
    and their probabilities."""
    if k < 1:
        raise ValueError(f"`k` must be at least 1, received k={k}")
    ids = np.argsort(-probabilities, axis=-1, kind="stable")[..., :k]
    return ids, np.take_along_axis(probabilities, ids, axis=-1)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One text's answer: the most probable class `label`, its probability `score`, and every class's
    `probabilities` (in `label_names` order)."""

    label: str
    score: float
    probabilities: np.ndarray
    label_names: tuple[str, ...]

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        """The `k` most probable classes as (label, probability), most probable first."""
        ids, scores = top_classes(self.probabilities, k)
        return [(self.label_names[i], float(score)) for i, score in zip(ids, scores)]


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Per text: `labels` (class names), `label_ids` and `probabilities` (columns in `label_names` order). A
    sequence of `Prediction`s: `predictions[i]` is the i-th text's."""

    labels: list[str]
    label_ids: np.ndarray
    probabilities: np.ndarray
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Prediction:
        probabilities = self.probabilities[index]
        return Prediction(self.labels[index], float(probabilities.max()), probabilities, self.label_names)

    def __iter__(self) -> Iterator[Prediction]:
        return (self[index] for index in range(len(self)))


class Classifier:
    """An exported student. Build it with `load_classifier`.

    Attributes:
        path: the SavedModel directory or `.tflite` file.
        kind: "saved_model", "tflite" or "mediapipe".
        label_names: the classes, in class-id order.
        is_pair: whether it classifies pairs of texts (`predict(texts_a, texts_b)`).
    """

    def __init__(self, path: str, kind: str):
        self.path, self.kind = path, kind
        if kind == "saved_model":
            import tensorflow as tf

            self._loaded = tf.saved_model.load(path)
            if not hasattr(self._loaded, "labels"):
                raise FileNotFoundError(f"{path} has no `labels` endpoint: re-export it with this version")
            self.label_names = tuple(name.decode("utf-8") for name in self._loaded.labels().numpy())
            self.is_pair = "text_a" in self._loaded.signatures["serve"].structured_input_signature[1]
        elif kind == "mediapipe":
            from bilstm_kd.export.mediapipe import label_names

            self.label_names, self.is_pair = label_names(path), False
        else:
            from bilstm_kd.export.tflite import read_metadata

            metadata = read_metadata(path)
            self.label_names = tuple(metadata["labels"])
            self.is_pair = len(metadata["inputs"]) == 2

    @overload
    def predict(self, texts: str, texts_b: str | None = None, batch_size: int = 512) -> Prediction: ...

    @overload
    def predict(
        self, texts: Sequence[str], texts_b: Sequence[str] | None = None, batch_size: int = 512
    ) -> Predictions: ...

    def predict(self, texts, texts_b=None, batch_size=512):
        """Classifies one text (a `Prediction`) or a sequence of texts (`Predictions`), `batch_size` at a time;
        pairs: `texts` with `texts_b`. Anything but strings is a `TypeError` naming where it is."""
        if self.is_pair != (texts_b is not None):
            raise ValueError(f"{self.path} classifies {'pairs: pass texts_b' if self.is_pair else 'single texts'}")
        if isinstance(texts, str) and (texts_b is None or isinstance(texts_b, str)):
            return self.predict([texts], None if texts_b is None else [texts_b], batch_size)[0]
        columns = [_strings(texts, "texts")] + ([_strings(texts_b, "texts_b")] if texts_b is not None else [])
        if len({len(column) for column in columns}) != 1:
            raise ValueError(f"texts and texts_b differ in length: {len(columns[0])} and {len(columns[1])}")
        batches = [
            self._probabilities([column[start : start + batch_size] for column in columns])
            for start in range(0, len(columns[0]), batch_size)
        ]
        probabilities = np.concatenate(batches) if batches else np.zeros((0, len(self.label_names)), "float32")
        label_ids = np.argmax(probabilities, axis=-1)
        return Predictions([self.label_names[i] for i in label_ids], label_ids, probabilities, self.label_names)

    def _probabilities(self, columns: list[list[str]]) -> np.ndarray:
        texts = tuple(columns) if self.is_pair else columns[0]
        if self.kind == "saved_model":
            from bilstm_kd.export.saved_model import serve

            return serve(self._loaded, texts)["probabilities"]
        if self.kind == "mediapipe":
            from bilstm_kd.export.mediapipe import classify_with_mediapipe

            return classify_with_mediapipe(self.path, texts, len(self.label_names))
        from bilstm_kd.export.tflite import tflite_predict_texts

        logits = tflite_predict_texts(self.path, texts)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)


def _strings(texts: Sequence[str], name: str) -> list[str]:
    """`texts` as a list, checked to hold strings only: TensorFlow's own error for anything else names no row."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise TypeError(f"`{name}` must be a string or a sequence of strings, received {type(texts).__name__}")
    column = list(texts)
    for index, text in enumerate(column):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{index}] is {type(text).__name__} ({text!r:.40}), not a string")
    return column


def find_model(path: str | os.PathLike, kind: str = "auto") -> tuple[str, str]:
    """The exported model at `path`, a run directory, its `export/` directory, a SavedModel directory or a
    `.tflite` file: `(model path, kind)`. "auto" prefers the SavedModel, then `student.tflite`; a `.tflite`
    file without `<name>.metadata.json` beside it is taken for a MediaPipe file (metadata inside)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown model kind {kind!r}; kinds: {', '.join(KINDS)}")
    path = os.fspath(path)
    if os.path.isfile(path):
        if not path.endswith(".tflite"):
            raise FileNotFoundError(f"{path} is a file but not a .tflite model")
        if kind == "auto":
            from bilstm_kd.export.tflite import metadata_path

            kind = "tflite" if os.path.exists(metadata_path(path)) else "mediapipe"
        return path, kind
    candidates = {
        "saved_model": [path, os.path.join(path, "saved_model"), os.path.join(path, "export", "saved_model")],
        "tflite": [os.path.join(path, "student.tflite"), os.path.join(path, "export", "student.tflite")],
        "mediapipe": [
            os.path.join(path, name) for name in ("student_mediapipe.tflite", "export/student_mediapipe.tflite")
        ],
    }
    kinds = ("saved_model", "tflite", "mediapipe") if kind == "auto" else (kind,)
    for candidate_kind in kinds:
        for candidate in candidates[candidate_kind]:
            found = os.path.isfile(os.path.join(candidate, "saved_model.pb")) or candidate.endswith(".tflite")
            if found and os.path.exists(candidate):
                return candidate, candidate_kind
    wanted = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} or {kinds[-1]}"
    raise FileNotFoundError(
        f"No exported {wanted} model at {path}: give a run directory whose export stage has run (export/), "
        "a SavedModel directory or a .tflite file"
    )


def load_classifier(path: str | os.PathLike, kind: str = "auto") -> Classifier:
    """The exported classifier at `path` (see `find_model`)."""
    return Classifier(*find_model(path, kind))
