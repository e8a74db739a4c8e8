"""Exports of the trained student: SavedModel (`saved_model`) and TFLite (`tflite`), each verified against
the Keras student.

This file imports nothing heavy: the command line validates `--tflite_quantization` and `--fold_embeddings`
against `QUANTIZATIONS` and `FOLDINGS` before TensorFlow loads.
"""

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
FOLDINGS = ("auto", "fold", "unfolded")  # see `student.folding`
