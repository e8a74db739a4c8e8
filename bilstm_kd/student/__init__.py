"""The BiLSTM students: layers (`layers`: `MaskedBiLSTM`, `StudentEmbedding`), models (`models`), the
students' optimizer (`optimizers`) and the embeddings folded into the input projection for inference
(`folding`).

This file imports nothing heavy: the command line validates `--lstm_kernel` and `--fold_embeddings` against
`LSTM_KERNELS` and `FOLDINGS` before TensorFlow loads.
"""

# How `layers.MaskedBiLSTM` runs: cuDNN's fused kernel on a GPU and the packed loop elsewhere (auto), or either.
LSTM_KERNELS = ("auto", "cudnn", "masked")
# Whether an inference copy folds the embeddings into a gate table: always, never, or by its size (`folding.fold_pays`).
FOLDINGS = ("auto", "fold", "unfolded")
