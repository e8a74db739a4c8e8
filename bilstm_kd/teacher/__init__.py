"""The BERT teacher: the model (`model`), loading a pretrained one (`loading`), encoding text and computing
logits (`inference`), fine-tuning (`fine_tuning`), saving and reloading (`saving`) and static word vectors for
the student (`word_vectors`).

This file imports nothing heavy: the command line validates `--teacher_pooling` against `POOLINGS` before
TensorFlow loads.
"""

POOLINGS = ("cls", "mean")
