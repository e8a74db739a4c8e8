"""Shared test set-up: quiet TensorFlow, and the location of the real GLUE data when it is present."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib

import pytest

GLUE_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"

requires_glue = pytest.mark.skipif(
    not GLUE_DIR.is_dir(), reason=f"real GLUE data not found at {GLUE_DIR} (it lives in ../shared beside the repo)"
)
