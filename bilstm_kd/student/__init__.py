"""The BiLSTM students: layers (`layers`: `MaskedBiLSTM`, `StudentEmbedding`), models (`models`) and the
students' optimizer (`optimizers`).

This file imports nothing heavy: the command line validates `--lstm_kernel` against `LSTM_KERNELS` before
TensorFlow loads.
"""

# How `layers.MaskedBiLSTM` runs: cuDNN's fused kernel on a GPU and the packed loop elsewhere (auto), or either.
LSTM_KERNELS = ("auto", "cudnn", "masked")
