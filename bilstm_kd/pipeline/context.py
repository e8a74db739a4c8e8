"""What the stages of one run share: the configuration, where it runs, its paths and its inputs."""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import tensorflow as tf

from bilstm_kd import cache
from bilstm_kd.config import RunConfig
from bilstm_kd.data.readers import Dataset, Examples
from bilstm_kd.data.tasks import Task
from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.pipeline.inputs import RunInputs, prepare_inputs
from bilstm_kd.pipeline.paths import RunPaths


def spec_from(spec_type: type, section: Any, values: dict[str, Any] | None = None, **flag_names: str) -> Any:
    """A library's settings dataclass filled from a flag section: each field from `values` (settings from
    elsewhere) or from the flag of its own name, or of the name `flag_names` gives it (e.g.
    `pooling="teacher_pooling"`)."""
    values = values or {}
    fields = [field for field in dataclasses.fields(spec_type) if field.name not in values]
    flags = {field.name: getattr(section, flag_names.get(field.name, field.name)) for field in fields}
    return spec_type(**flags, **values)


class Run:
    """One run: its configuration and strategy, its paths, its inputs (prepared on first use), what its stages
    found, and the models they share.

    Args:
        config: the validated run configuration.
        strategy: the `tf.distribute` strategy every stage runs under.
        verbose: 1 shows progress, 0 keeps quiet.
        timing_seconds: how long the report times each model at each batch size.
        dataset: the data, already read with this configuration (None: read on first use).
    """

    def __init__(
        self,
        config: RunConfig,
        strategy: tf.distribute.Strategy,
        verbose: int,
        timing_seconds: float,
        dataset: Dataset | None = None,
    ):
        self.config = config
        self.dataset = dataset  # the data, when already read (`inputs.prepare_inputs` reads it otherwise)
        self.strategy = strategy
        self.chief = distribute.is_chief(strategy)
        self.verbose = verbose
        self.timing_seconds = timing_seconds
        self.paths = RunPaths.of(config.workdir)
        self.stage_seconds: dict[str, dict[str, Any]] = {}
        self.fingerprints: dict[str, str] = {}  # of each stage this run ran or found up to date
        self.teachers: dict[str, Any] = {}  # the fine-tuned teacher by dtype policy, on this worker's devices
        self._tokenizer = None

    @functools.cached_property
    def inputs(self) -> RunInputs:
        """The data, vocabulary and word vectors every stage reads (`inputs.prepare_inputs`)."""
        return prepare_inputs(self.config, self.paths, self.dataset, self.chief)

    def log(self, message: str) -> None:
        if self.verbose:
            prefix = "" if self.chief else f"[{distribute.worker_name(self.strategy)}] "
            print(prefix + message, flush=True)

    def write_record(self, path: str, record: dict[str, Any]) -> None:
        """Writes a JSON record, on the chief only."""
        if self.chief:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            cache.write_json(path, record)

    @property
    def task(self) -> Task:
        """The task: its classes (found in the data unless the flags name them), pair or not, metrics."""
        return self.inputs.task

    @property
    def first_dev(self) -> Examples:
        """The dev split that selects models (MNLI has two)."""
        return next(iter(self.inputs.dev.values()))

    @property
    def student_seed(self) -> int:
        """Seeds the students' weights, dropout and batch order: --student_seed, or --seed when it is -1."""
        student_seed = self.config.distill.student_seed
        return self.config.seed if student_seed == -1 else student_seed

    def teacher_model(self, dtype_policy: str = ""):
        """The fine-tuned teacher at `dtype_policy` (default: --mixed_precision's), loaded onto this worker's devices
        once per policy (for labelling and the report)."""
        from bilstm_kd.teacher.precision import precision_policy
        from bilstm_kd.teacher.saving import load_fine_tuned_teacher

        teacher = self.config.teacher
        policy = dtype_policy or precision_policy(teacher.mixed_precision)
        if policy not in self.teachers:
            with distribute.local_strategy(self.strategy).scope():
                self.teachers[policy] = load_fine_tuned_teacher(self.paths.teacher, teacher.teacher_ensemble, policy)
        return self.teachers[policy]

    def labelling_policy(self) -> str:
        """The teacher's Keras policy for labelling (`--label_precision`; dynamic_int8 checks with float32)."""
        from bilstm_kd.teacher.lite import DYNAMIC_INT8
        from bilstm_kd.teacher.precision import FLOAT32, precision_policy

        teacher = self.config.teacher
        if teacher.label_precision == DYNAMIC_INT8:
            return FLOAT32
        return precision_policy(
            teacher.mixed_precision if teacher.label_precision == "same" else teacher.label_precision
        )

    def tokenizer(self):
        """The student's tokenizer, built once per run (its lookup table is as large as the vocabulary)."""
        if self._tokenizer is None:
            from bilstm_kd.text.vocab import WordTokenizer

            student = self.config.student
            self._tokenizer = WordTokenizer(
                self.inputs.vocabulary.tokens, student.max_length, tokenizer=student.tokenizer
            )
        return self._tokenizer
