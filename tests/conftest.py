"""Shared test set-up: quiet TensorFlow, two logical CPUs, and where the real GLUE data is when present."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib

import pytest
import tensorflow as tf

# Two logical CPU devices, so that MirroredStrategy has two replicas to split batches between. This must
# happen before TensorFlow runs any operation; everything else keeps using the first one.
LOGICAL_CPUS = ["/cpu:0", "/cpu:1"]
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * len(LOGICAL_CPUS)
)

GLUE_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"


def tiny_bert_backbone(vocabulary_size, max_sequence_length=16, seed=0, **kwargs):
    """A one-layer, 8-wide keras-hub `BertBackbone` with seeded random weights (`kwargs`: e.g. dropout)."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=max_sequence_length,
        **kwargs,
    )


requires_glue = pytest.mark.skipif(
    not GLUE_DIR.is_dir(), reason=f"real GLUE data not found at {GLUE_DIR} (it lives in ../shared beside the repo)"
)
