"""A TFLite copy of the teacher with int8 weights, for labelling on a CPU (`--label_precision=dynamic_int8`).

The teacher is converted once per labelling run with dynamic-range quantization (int8 weights per output
channel for every matrix of at least 1,024 weights; activations quantized per word piece on the fly, so an
example's logits do not depend on its batch) and run by LiteRT with XNNPACK. On this repository's 2-core
machine the copy of the SST-2 MPNet teacher labels transfer sentences 3.9x faster than TensorFlow's float32
pass, with 99.3% of the labels the same (docs/results.md, "Teacher labelling"). Its errors flip labels where
the teacher is unsure, so labelling relabels with the float teacher every example whose int8 logits are less
than a margin apart (`doubtful_examples`): the labels then agree with the float teacher's wherever the int8
error of the two logits' difference is smaller than the margin (all of them at margin 1.0, 2.7x faster).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from bilstm_kd.teacher.model import BertTeacher, TeacherEnsemble

DYNAMIC_INT8 = "dynamic_int8"
# Padded word pieces per interpreter batch: on this 2-core machine MPNet's copy ran at 280 SST-2 transfer
# sentences/s with 1,024 and 244 with 2,048 (`benchmarks/labelling_speed.py`).
LITE_TOKENS_PER_BATCH = 1024
_INPUT_DTYPES = {"token_ids": "int32", "segment_ids": "int32", "padding_mask": "bool"}


class LiteTeacher:
    """The teacher as a LiteRT interpreter: `logits(batch)` for the batches `EncodedTexts.batch` makes.

    Goes where `inference.encoded_logits` takes a teacher (not into training: it has no weights to train).
    Each new batch shape resizes the interpreter's tensors, which costs far less than a transformer pass.

    Args:
        teacher: the fine-tuned `BertTeacher` or `TeacherEnsemble` (float32).
        threads: interpreter threads (default: the CPU cores this process may use).
    """

    def __init__(self, teacher: BertTeacher | TeacherEnsemble, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        from bilstm_kd.export.common import convert_keras_model

        inputs = {name: keras.Input((None,), dtype=dtype, name=name) for name, dtype in _INPUT_DTYPES.items()}
        # Listed, not a dict: the TFLite converter takes Keras 3 models with positional inputs only.
        wrapper = keras.Model(list(inputs.values()), {"logits": teacher(inputs, training=False)}, name="lite_teacher")
        self.flatbuffer = convert_keras_model(wrapper, DYNAMIC_INT8, "the teacher, for labelling")
        self.threads = threads or len(os.sched_getaffinity(0))
        self._runner = Interpreter(model_content=self.flatbuffer, num_threads=self.threads).get_signature_runner()
        self.preprocessor = teacher.preprocessor
        self.num_classes = teacher.num_classes
        self.sequence_length = teacher.sequence_length
        self.precision = DYNAMIC_INT8

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self._runner(**batch)["logits"]


def doubtful_examples(logits: np.ndarray, margin: float) -> np.ndarray:
    """Indices of the examples whose two highest logits are less than `margin` apart (to relabel)."""
    if logits.shape[1] < 2 or margin <= 0:
        return np.zeros([0], np.int64)
    top_two = np.sort(logits, axis=1)[:, -2:]
    return np.flatnonzero(top_two[:, 1] - top_two[:, 0] < margin)
