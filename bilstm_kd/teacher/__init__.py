"""The BERT teacher: the model (`model`), loading a pretrained one (`loading`), encoding text and computing
logits (`inference`), fine-tuning (`fine_tuning`), saving and reloading (`saving`) and static word vectors for
the student (`word_vectors`).

This file imports nothing heavy: the command line validates `--teacher_pooling` and `--mixed_precision` against
`POOLINGS` and `PRECISIONS` (`--label_precision`: `LABEL_PRECISIONS`) before TensorFlow loads.
"""

POOLINGS = ("cls", "mean")
# --mixed_precision: off (float32), auto (by device, `precision.precision_policy`), or a Keras policy by name.
PRECISIONS = ("off", "auto", "mixed_float16", "mixed_bfloat16")
# --label_precision: as --mixed_precision ("same"), one of its values, or a TFLite copy with int8 weights (`lite`).
LABEL_PRECISIONS = ("same", *PRECISIONS, "dynamic_int8")
