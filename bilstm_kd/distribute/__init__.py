"""Where the work runs: `tf.distribute` strategies and the helpers that let several workers share a run
(`strategies`).

This file imports nothing heavy: the command line validates `--strategy` against `STRATEGIES` before
TensorFlow loads.
"""

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
