"""Exports of the trained student: SavedModel (`saved_model`) and TFLite (`tflite`), each verified against
the Keras student.

This file imports nothing heavy: the command line validates `--tflite_quantization` against `QUANTIZATIONS`
before TensorFlow loads.
"""

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
