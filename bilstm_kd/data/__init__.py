"""Task data: reading files into columns (`tables`), tasks, their metrics and the GLUE presets (`tasks`), the
splits of a task from files, TensorFlow Datasets or the demo corpus (`readers`), and split statistics
(`statistics`).

This file imports nothing heavy: the command line validates `--data_source` against `SOURCES` before
TensorFlow loads.
"""

SOURCES = ("auto", "files", "glue", "tfds", "demo")
