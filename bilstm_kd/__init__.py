"""bilstm_kd: distil a task-specific BERT into small, fast BiLSTM classifiers (Tang et al., 2019).

    from bilstm_kd import Distiller, BiLSTMClassifier, SiameseBiLSTMClassifier, WordTokenizer, RunConfig

Names are imported on first use, so `python -m bilstm_kd.main` validates its flags before TensorFlow loads.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "bilstm_kd.config",
    "Distiller": "bilstm_kd.distiller",
    "BiLSTMClassifier": "bilstm_kd.students",
    "SiameseBiLSTMClassifier": "bilstm_kd.students",
    "build_student": "bilstm_kd.students",
    "load_student": "bilstm_kd.students",
    "BertTeacher": "bilstm_kd.teacher",
    "Vocabulary": "bilstm_kd.vocab",
    "WordTokenizer": "bilstm_kd.vocab",
    "run": "bilstm_kd.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bilstm_kd' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
