"""The pipeline: a small stage runner (`runner`: `run`, the stage table), what the stages share (`context`,
`inputs`) and one module per stage.

This file imports nothing heavy: the command line validates `--stages` against `STAGES` before TensorFlow
loads.
"""

STAGES = ("tfidf", "teacher", "augment", "label", "distill", "baseline", "export", "report")
