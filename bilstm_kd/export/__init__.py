"""Exports of the trained student: SavedModel (`saved_model`) and TFLite (`tflite`), each verified against
the Keras student.

This file imports nothing heavy: the command line validates `--tflite_quantization` against `QUANTIZATIONS`
before TensorFlow loads (`--fold_embeddings` is the student's: `student.FOLDINGS`).
"""

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
