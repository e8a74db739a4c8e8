"""Distillation: the loss terms and metrics (`losses`, `metrics`), the `Distiller` model (`distiller`), the
students' input pipeline (`batches`), the resumable training loop (`training`) and evaluation (`evaluation`).

This file imports nothing heavy: the command line validates its flags against these choices before
TensorFlow loads.
"""

DISTILL_LOSSES = ("mse", "kl")
MSE_REDUCTIONS = ("sum", "mean")
OPTIMIZERS = ("adadelta", "adam")
