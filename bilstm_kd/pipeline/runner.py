"""The stage runner: one table of stages, each skipped while its recorded fingerprint holds.

    config.json              the resolved run configuration (rewritten by every run)
    data_stats.json          dataset statistics, vocabulary size and word-vector coverage
    stages/<stage>.json      each stage's fingerprint, status, outputs and timing
    teacher/                 the fine-tuned teacher (teacher.keras, teacher.json with its dev metrics);
                             with --teacher_ensemble=N, members 2..N in teacher/member_2/ ...
    transfer/pos/            cached part-of-speech tags
    transfer/augmented/      the augmented transfer set (sharded TFRecords + manifest)
    transfer/labelled/       the same records with the teacher's logits
    student/vocab.txt        the student's vocabulary
    student/embeddings.npz   its initial word vectors (reused while settings, vocabulary and vectors file hold)
    student/distilled/       checkpoints, TensorBoard logs and student.keras of the distilled student
    student/baseline/        the same student trained on gold labels only
    export/                  saved_model/, student.tflite (+ vocab.txt, labels.txt, metadata)
    report.json, report.md       the report (report.png: learning curves and speed; report_calibration.png;
                                 report_confusion.png; report_classes_<split>.csv, report_confusion_<split>.csv)

A stage is skipped when its record's fingerprint (a hash of every setting and upstream result it depends
on) matches and it finished; a changed setting reruns exactly the stages that depend on it. A stage that
was killed resumes: its record says "running" with the same fingerprint, and its own checkpoints (teacher
epochs, transfer-set shards, labelled shards, student epochs) are picked up where they stopped.

Under `--strategy=multi_worker` every worker runs this pipeline on the same run directory (a shared file
system). The chief alone writes the records, the vocabulary, the transfer set and the report; all workers
take part in teacher fine-tuning, labelling (each its own shards) and student training, and meet at a
barrier at the start and end of every stage they share. Export and report are the chief's alone.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from bilstm_kd import cache
from bilstm_kd.config import STAGES, RunConfig
from bilstm_kd.data.statistics import format_statistics
from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.pipeline import (
    defaults,
    export_stage,
    report_stage,
    student_stages,
    teacher_stage,
    tfidf_stage,
    transfer_stages,
)
from bilstm_kd.pipeline.context import Run

Results = dict[str, dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of the stage table.

    Args:
        name: the `--stages` name, also the name of its record in `stages/`.
        needs: the stages whose outputs it reads; without them it does not run.
        depends_on: everything its result depends on, from the run and the outputs of `needs`.
        compute: does the work and returns the outputs recorded for later stages.
        owned: directories that belong to this stage alone: cleared when its fingerprint changes (so stale
            checkpoints are never resumed), kept when a killed run resumes.
        continues: `continues(old depends_on, new depends_on)` says that new settings carry on from the old
            run's work instead of starting again (more student epochs).
        workers: who runs it under several workers: "all", "chief" (the others wait for its outputs) or
            "chief_alone" (the others skip it: nothing after it needs it).
    """

    name: str
    needs: tuple[str, ...]
    depends_on: Callable[[Run, Results], dict[str, Any]]
    compute: Callable[[Run, Results], dict[str, Any]]
    owned: Callable[[Run], tuple[str, ...]] = lambda run: ()
    continues: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None
    workers: str = "all"

    def __post_init__(self) -> None:
        if self.workers not in ("all", "chief", "chief_alone"):
            raise ValueError(
                f"Stage {self.name!r}: `workers` must be all, chief or chief_alone, received {self.workers!r}"
            )


STAGE_TABLE = (
    # First: a minute of TF-IDF + logistic regression sets the bar the student has to beat.
    Stage(
        "tfidf", (), tfidf_stage.depends_on, tfidf_stage.train, owned=lambda run: (run.paths.tfidf,), workers="chief"
    ),
    Stage("teacher", (), teacher_stage.depends_on, teacher_stage.fine_tune),
    Stage("augment", (), transfer_stages.augment_depends_on, transfer_stages.augment, workers="chief"),
    Stage("label", ("teacher", "augment"), transfer_stages.label_depends_on, transfer_stages.label),
    Stage(
        "distill",
        ("label",),
        student_stages.distill_depends_on,
        student_stages.distill,
        owned=lambda run: (run.paths.distill,),
        continues=student_stages.more_epochs,
    ),
    Stage(
        "baseline",
        (),
        student_stages.baseline_depends_on,
        student_stages.baseline,
        owned=lambda run: (run.paths.baseline,),
        continues=student_stages.more_epochs,
    ),
    Stage(
        "export",
        ("distill",),
        export_stage.depends_on,
        export_stage.export,
        owned=lambda run: (run.paths.export,),
        workers="chief_alone",
    ),
)
STAGES_BY_NAME = {stage.name: stage for stage in STAGE_TABLE}
# The report is not in the table: it reads every up-to-date result and records nothing of its own.
assert (*STAGES_BY_NAME, "report") == STAGES, "the stage table and config.STAGES disagree"


class StageError(RuntimeError):
    """A stage cannot run, e.g. because a stage it depends on has no up-to-date output."""


def needed_stages(requested: set[str]) -> set[str]:
    """The requested stages and everything they depend on."""
    needed, pending = set(), list(requested)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(STAGES_BY_NAME[name].needs if name in STAGES_BY_NAME else ())
    return needed


class Pipeline:
    """One run of the configured stages in `config.workdir`.

    Args:
        config: the validated run configuration.
        verbose: 1 shows progress bars, 0 keeps quiet (tests).
        timing_seconds: how long the report times each model at each batch size (at least one pass).
    """

    def __init__(self, config: RunConfig, verbose: int = 1, timing_seconds: float = 2.0):
        # First: a multi-worker strategy must exist before TensorFlow runs any operation.
        settings = config.distribute
        self.strategy = distribute.make_strategy(settings.strategy, settings.devices, settings.tpu)
        self.config = config
        self.verbose = verbose
        self.timing_seconds = timing_seconds
        self.requested = set(config.stage_list())
        self.needed = needed_stages(self.requested)

    def run(self) -> dict[str, Any]:
        from bilstm_kd.data.readers import load_dataset
        from bilstm_kd.pipeline.inputs import data_source

        chief = distribute.is_chief(self.strategy)
        os.makedirs(self.config.workdir, exist_ok=True)
        split_record = os.path.join(self.config.workdir, "data_split.json")
        self.config, dataset, choices = defaults.resolve(
            self.config, lambda config: load_dataset(data_source(config), config.seed, split_record)
        )
        if chief:
            record = {**self.config.to_dict(), "choices": {choice.flag: choice.reason for choice in choices}}
            cache.write_json(os.path.join(self.config.workdir, "config.json"), record)
        run = Run(self.config, self.strategy, self.verbose, self.timing_seconds, dataset)
        if choices:
            run.log("Chosen for this data (set a flag to choose otherwise):")
            for choice in choices:
                run.log(f"  {choice.describe()}")
        run.log(f"Devices: {distribute.describe(self.strategy)}")
        run.log(format_statistics(run.inputs.statistics))
        # The report shows every model whose outputs are up to date, even from stages not run now.
        candidates = {stage.name for stage in STAGE_TABLE} if "report" in self.requested else set(self.needed)
        if not self.config.distill.baseline:
            candidates.discard("baseline")
        if not self.config.distill.tfidf_baseline:
            candidates.discard("tfidf")
        if not chief:
            candidates -= {stage.name for stage in STAGE_TABLE if stage.workers == "chief_alone"}
        results: Results = {}
        for stage in STAGE_TABLE:
            if stage.name in candidates and all(name in results for name in stage.needs):
                outputs = self._run_stage(run, stage, results)
                if outputs is not None:
                    results[stage.name] = outputs
        if "report" in self.requested and chief:
            return report_stage.report(run, results)
        return {"stages": run.stage_seconds}

    def _run_stage(self, run: Run, stage: Stage, results: Results) -> dict[str, Any] | None:
        """Runs `stage` unless its up-to-date outputs exist; returns its outputs.

        A stage outside `--stages` is not run: its up-to-date outputs are used, and without them a stage
        that a requested one needs is an error, while one the report would merely show is left out (None).
        """
        depends_on = stage.depends_on(run, results)
        stage_fingerprint = cache.fingerprint(depends_on)
        record_path = os.path.join(run.paths.stages, f"{stage.name}.json")
        record = cache.read_json(record_path) or {}
        same = record.get("fingerprint") == stage_fingerprint
        if same and record.get("status") == "done":
            run.log(f"[{stage.name}] up to date (fingerprint {stage_fingerprint}): skipped")
            run.stage_seconds[stage.name] = {"status": "up to date", "seconds": record.get("seconds")}
            run.fingerprints[stage.name] = stage_fingerprint
            return record["outputs"]
        if stage.name not in self.requested:
            if stage.name not in self.needed:
                return None
            raise StageError(
                f"Stage '{stage.name}' has no up-to-date output in {self.config.workdir} and is not in "
                f"--stages={self.config.stages}; add it to --stages"
            )
        self._prepare_outputs(run, stage, record, depends_on, same)
        run.write_record(record_path, {"fingerprint": stage_fingerprint, "status": "running", "depends_on": depends_on})
        shared = stage.workers != "chief_alone"
        if shared:
            distribute.barrier(self.strategy)  # the chief has cleared what it had to
        run.log(f"[{stage.name}] running")
        started = time.perf_counter()
        outputs = stage.compute(run, results) if run.chief or stage.workers == "all" else None
        seconds = round(time.perf_counter() - started, 1)
        if outputs is not None:
            done = {"fingerprint": stage_fingerprint, "status": "done", "seconds": seconds, "outputs": outputs}
            run.write_record(record_path, {**done, "depends_on": depends_on})
        if shared:
            distribute.barrier(self.strategy)  # the stage is done everywhere and its record written
        if outputs is None:  # a chief-only stage on another worker: the chief's outputs
            outputs = cache.read_json(record_path)["outputs"]
        run.stage_seconds[stage.name] = {"status": "ran", "seconds": seconds}
        run.fingerprints[stage.name] = stage_fingerprint
        run.log(f"[{stage.name}] done in {seconds:.1f} s; wrote {outputs.get('wrote', '-')}")
        return outputs

    @staticmethod
    def _prepare_outputs(run: Run, stage: Stage, record: dict[str, Any], depends_on: dict, same: bool) -> None:
        """Keeps the stage's own directories for a resumed or continued run; clears them otherwise."""
        if not same and stage.continues is not None and stage.continues(record.get("depends_on") or {}, depends_on):
            run.log(f"[{stage.name}] more epochs than the last run: continuing it")
        elif not same:
            for directory in stage.owned(run) if run.chief else ():
                if os.path.exists(directory):
                    run.log(f"[{stage.name}] settings changed: clearing {directory}")
                    shutil.rmtree(directory)
        elif record.get("status") == "running":
            run.log(f"[{stage.name}] resuming an interrupted run")


def run(config: RunConfig, verbose: int = 1) -> dict[str, Any]:
    """Runs the configured stages in `config.workdir`."""
    return Pipeline(config, verbose=verbose).run()
