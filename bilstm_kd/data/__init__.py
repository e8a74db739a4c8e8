"""Task data: the tasks and how they are scored (`tasks`), readers of GLUE files, TensorFlow Datasets and the
demo corpus (`readers`), and split statistics (`statistics`).

This file imports nothing heavy: the command line validates `--data_source` against `SOURCES` before
TensorFlow loads.
"""

SOURCES = ("glue", "tfds", "demo")
