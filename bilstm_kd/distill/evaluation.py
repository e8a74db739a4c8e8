"""Student predictions and task metrics, and the one traced forward pass that teacher and students share."""

from __future__ import annotations

import weakref
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import Task

_TRACED_FORWARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def traced_forward(model: keras.Model, input_signature: Any = None, jit_compile: bool = False):
    """`model(inputs, training=False)` as one traced function, made once per model (and signature).

    With an `input_signature` (e.g. `[None, None]` shapes), one graph serves every input and the same input
    always gives the same bits. Without one, `reduce_retracing` makes one graph for every batch size and length
    from the second input shape on. With `jit_compile`, XLA compiles one program per input shape (traced once
    per shape: `experimental_get_tracing_count()` counts them), so the caller keeps the shapes few. The cache
    holds the model weakly.
    """
    forwards = _TRACED_FORWARDS.setdefault(model, {})
    key = (repr(input_signature), jit_compile)
    if key not in forwards:
        model_reference = weakref.ref(model)

        def forward(inputs):
            return model_reference()(inputs, training=False)

        signature = None if input_signature is None or jit_compile else [input_signature]
        forwards[key] = tf.function(
            forward,
            input_signature=signature,
            reduce_retracing=signature is None and not jit_compile,
            jit_compile=jit_compile,
        )
    return forwards[key]


def _split_element(student: keras.Model, element) -> tuple[Any, Any]:
    """`(inputs, targets or None)` from a dataset element that is `inputs` or `(inputs, targets)`."""
    if not isinstance(element, tuple):
        return element, None
    if len(student.inputs) == 2:  # a pair student's inputs are a tuple themselves
        if isinstance(element[0], tuple):
            return element[0], (element[1] if len(element) > 1 else None)
        return element, None
    return element[0], (element[1] if len(element) > 1 else None)


def predict_logits(student: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """Student logits for every example of `dataset`, in its order.

    Args:
        student: a student model.
        dataset: batches of `inputs` or `(inputs, targets)`; pair inputs are `(ids_a, ids_b)` tuples.

    Returns:
        float32 `[examples, num_classes]`.
    """
    logits_of = traced_forward(student)
    outputs = [logits_of(_split_element(student, element)[0]).numpy() for element in dataset]
    if not outputs:
        return np.zeros((0, student.num_classes), "float32")
    return np.concatenate(outputs).astype("float32")


def evaluate_student(
    student: keras.Model, dataset: tf.data.Dataset, task: Task, in_detail: bool = False
) -> dict[str, Any]:
    """Task metrics (`task.evaluate`) of the student on gold-labelled batches.

    Args:
        student: a student model.
        dataset: batches of `(inputs, targets)`, targets a dict with `label` (and optionally `has_label`,
            `teacher_logits`) or a tensor of labels. Examples without a gold label are not scored.
        task: the task, for its metrics.
        in_detail: also give per-class scores and the confusion matrix (`Task.evaluate_in_detail`).

    Returns:
        The task's metrics, `examples` (how many were scored) and, when the batches carry teacher logits,
        `teacher_agreement` (fraction of all examples where student and teacher argmax agree).
    """
    logits_of = traced_forward(student)
    labels, predictions, agreements = [], [], []
    for element in dataset:
        inputs, targets = _split_element(student, element)
        if targets is None:
            raise ValueError("evaluate_student needs (inputs, targets) batches with gold labels")
        predicted = np.argmax(logits_of(inputs).numpy(), axis=-1)
        if isinstance(targets, dict):
            label = np.asarray(targets["label"]).reshape(-1)
            has_label = np.asarray(targets.get("has_label", label >= 0)).reshape(-1).astype(bool)
            if "teacher_logits" in targets:
                agreements.append(predicted == np.argmax(np.asarray(targets["teacher_logits"]), axis=-1))
        else:
            label = np.asarray(targets).reshape(-1)
            has_label = label >= 0
        labels.append(label[has_label])
        predictions.append(predicted[has_label])
    labels_array = np.concatenate(labels) if labels else np.zeros(0, "int64")
    predictions_array = np.concatenate(predictions) if predictions else np.zeros(0, "int64")
    evaluate = task.evaluate_in_detail if in_detail else task.evaluate
    results = evaluate(labels_array, predictions_array)
    results["examples"] = int(labels_array.size)
    if agreements:
        results["teacher_agreement"] = float(np.mean(np.concatenate(agreements)))
    return results
