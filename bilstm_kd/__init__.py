"""bilstm_kd: distil a task-specific BERT into small, fast BiLSTM classifiers (Tang et al., 2019).

    from bilstm_kd import Distiller, BiLSTMClassifier, SiameseBiLSTMClassifier, WordTokenizer, RunConfig
    labels = bilstm_kd.load_classifier("runs/mine").predict(["What a great phone!"]).labels

Names are imported on first use, so `python -m bilstm_kd.main` validates its flags before TensorFlow loads.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "bilstm_kd.config",
    "Distiller": "bilstm_kd.distill.distiller",
    "BiLSTMClassifier": "bilstm_kd.student.models",
    "SiameseBiLSTMClassifier": "bilstm_kd.student.models",
    "build_student": "bilstm_kd.student.models",
    "load_student": "bilstm_kd.student.models",
    "BertTeacher": "bilstm_kd.teacher.model",
    "Vocabulary": "bilstm_kd.text.vocab",
    "WordTokenizer": "bilstm_kd.text.vocab",
    "run": "bilstm_kd.pipeline.runner",
    "load_classifier": "bilstm_kd.classifier",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bilstm_kd' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
