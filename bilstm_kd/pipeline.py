"""The distillation pipeline: stages that read and write one run directory.

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
    report.json, report.md, report.png

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
import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bilstm_kd import distribute
from bilstm_kd.config import RunConfig
from bilstm_kd.data import Examples, load_split, statistics
from bilstm_kd.embeddings import EmbeddingMatrix, build_vocabulary, cached_embeddings
from bilstm_kd.files import write_json
from bilstm_kd.shards import fingerprint
from bilstm_kd.tasks import Task, get_task

# How many dev examples the report times the models on (MNLI's dev sets have ~10k).
SPEED_EXAMPLES = 2048


# Stages that only the chief runs when there are several workers (the others wait for their outputs).
CHIEF_ONLY = ("augment",)
# Stages that the other workers skip altogether: nothing after them needs them.
CHIEF_ALONE = ("export", "report")

# Stages whose outputs another stage reads.
DEPENDENCIES = {"label": ("teacher", "augment"), "distill": ("label",), "export": ("distill",)}


def needed_stages(requested: set[str]) -> set[str]:
    """The requested stages and everything they depend on."""
    needed, pending = set(), list(requested)
    while pending:
        stage = pending.pop()
        if stage not in needed:
            needed.add(stage)
            pending.extend(DEPENDENCIES.get(stage, ()))
    return needed


class StageError(RuntimeError):
    """A stage cannot run, e.g. because a stage it depends on has no up-to-date output."""


def read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _more_epochs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a student's settings differ from its last run's only by more epochs: it then trains on."""

    def without_epochs(depends_on: dict[str, Any]) -> str:
        distill = {key: value for key, value in depends_on.get("distill", {}).items() if key != "epochs"}
        return fingerprint({**depends_on, "distill": distill})

    epochs = (old.get("distill", {}).get("epochs", 0), new["distill"]["epochs"])
    return epochs[1] > epochs[0] and without_epochs(old) == without_epochs(new)


def _texts_fingerprint(examples: Examples) -> str:
    return fingerprint(
        {"texts": [list(map(str, column)) for column in examples.texts], "labels": examples.labels.tolist()}
    )


def _directory_bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


class Pipeline:
    """One run of the configured stages in `config.workdir`.

    Args:
        config: the validated run configuration.
        verbose: 1 shows progress bars, 0 keeps quiet (tests).
        timing_seconds: how long the report times each model at each batch size (at least one pass).
    """

    def __init__(self, config: RunConfig, verbose: int = 1, timing_seconds: float = 2.0):
        # First: a multi-worker strategy must exist before TensorFlow runs any operation.
        distribute_config = config.distribute
        self.strategy = distribute.make_strategy(
            distribute_config.strategy, distribute_config.devices, distribute_config.tpu
        )
        self.chief = distribute.is_chief(self.strategy)
        self.config = config
        self.verbose = verbose
        self.timing_seconds = timing_seconds
        self.task: Task = get_task(config.data.task)
        self.workdir = config.workdir
        self.requested = set(config.stage_list())
        self.needed = needed_stages(self.requested)
        self.stage_seconds: dict[str, dict[str, Any]] = {}
        self.fingerprints: dict[str, str] = {}  # of each stage this run ran or found up to date
        self.paths = {
            "teacher": os.path.join(self.workdir, "teacher"),
            "pos": os.path.join(self.workdir, "transfer", "pos"),
            "augmented": os.path.join(self.workdir, "transfer", "augmented"),
            "labelled": os.path.join(self.workdir, "transfer", "labelled"),
            "vocabulary": os.path.join(self.workdir, "student", "vocab.txt"),
            "embeddings": os.path.join(self.workdir, "student", "embeddings.npz"),
            "distill": os.path.join(self.workdir, "student", "distilled"),
            "baseline": os.path.join(self.workdir, "student", "baseline"),
            "export": os.path.join(self.workdir, "export"),
            "stages": os.path.join(self.workdir, "stages"),
        }
        self._teacher = None
        self._word_tokenizer = None

    # ------------------------------------------------------------------------------------------ helpers

    def log(self, message: str) -> None:
        if self.verbose:
            prefix = "" if self.chief else f"[{distribute.worker_name(self.strategy)}] "
            print(prefix + message, flush=True)

    def _write_record(self, path: str, record: dict[str, Any]) -> None:
        if self.chief:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_json(path, record)

    def _settings(self, section: Any) -> dict[str, Any]:
        return dataclasses.asdict(section)

    def _stage(
        self,
        name: str,
        depends_on: dict[str, Any],
        function: Callable[[], dict[str, Any]],
        owned: tuple[str, ...] = (),
        continues: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any] | None:
        """Runs `function` unless its up-to-date outputs exist; returns the stage's outputs.

        A stage outside `--stages` is not run: its up-to-date outputs are used, and without them a stage
        that a requested one needs is an error, while one the report would merely show is left out (None).
        `owned` directories belong to this stage alone: they are cleared when the fingerprint changed
        (so stale checkpoints are never resumed) and kept when a killed run with the same fingerprint
        resumes, or when `continues(old depends_on, new depends_on)` says the new settings carry on from
        the old run's (more student epochs).
        """
        stage_fingerprint = fingerprint(depends_on)
        record_path = os.path.join(self.paths["stages"], f"{name}.json")
        record = read_json(record_path) or {}
        same = record.get("fingerprint") == stage_fingerprint
        if same and record.get("status") == "done":
            self.log(f"[{name}] up to date (fingerprint {stage_fingerprint}): skipped")
            self.stage_seconds[name] = {"status": "up to date", "seconds": record.get("seconds")}
            self.fingerprints[name] = stage_fingerprint
            return record["outputs"]
        if name not in self.requested:
            if name not in self.needed:
                return None
            raise StageError(
                f"Stage '{name}' has no up-to-date output in {self.workdir} and is not in "
                f"--stages={self.config.stages}; add it to --stages"
            )
        if not same and continues is not None and continues(record.get("depends_on") or {}, depends_on):
            self.log(f"[{name}] more epochs than the last run: continuing it")
        elif not same:
            for directory in owned if self.chief else ():
                if os.path.exists(directory):
                    self.log(f"[{name}] settings changed: clearing {directory}")
                    shutil.rmtree(directory)
        elif record.get("status") == "running":
            self.log(f"[{name}] resuming an interrupted run")
        self._write_record(
            record_path, {"fingerprint": stage_fingerprint, "status": "running", "depends_on": depends_on}
        )
        shared = name not in CHIEF_ALONE
        if shared:
            distribute.barrier(self.strategy)  # the chief has cleared what it had to
        self.log(f"[{name}] running")
        started = time.perf_counter()
        outputs = function() if self.chief or name not in CHIEF_ONLY else None
        seconds = round(time.perf_counter() - started, 1)
        if outputs is not None:
            self._write_record(
                record_path,
                {
                    "fingerprint": stage_fingerprint,
                    "status": "done",
                    "seconds": seconds,
                    "outputs": outputs,
                    "depends_on": depends_on,
                },
            )
        if shared:
            distribute.barrier(self.strategy)  # the stage is done everywhere and its record written
        if outputs is None:  # a chief-only stage on another worker: the chief's outputs
            outputs = read_json(record_path)["outputs"]
        self.stage_seconds[name] = {"status": "ran", "seconds": seconds}
        self.fingerprints[name] = stage_fingerprint
        self.log(f"[{name}] done in {seconds:.1f} s; wrote {outputs.get('wrote', '-')}")
        return outputs

    # ------------------------------------------------------------------------------------------- data

    def prepare(self) -> dict[str, Any]:
        """Loads the data and builds the student vocabulary and embeddings (cheap: done every run)."""
        started = time.perf_counter()
        config = self.config
        self.train = load_split(config.data, "train")
        self.dev = {split: load_split(config.data, split) for split in self.task.dev_splits}
        texts = (text for column in self.train.texts for text in column)
        self.vocabulary = build_vocabulary(config.student, texts, teacher=config.teacher.teacher)
        if self.chief:
            os.makedirs(os.path.dirname(self.paths["vocabulary"]), exist_ok=True)
            self.vocabulary.save(self.paths["vocabulary"])
        self.embeddings: EmbeddingMatrix = cached_embeddings(
            self.paths["embeddings"],
            config.student,
            self.vocabulary,
            seed=config.seed,
            teacher=config.teacher.teacher,
            write=self.chief,
        )
        self.data_fingerprint = fingerprint(
            {"train": _texts_fingerprint(self.train), "dev": {s: _texts_fingerprint(d) for s, d in self.dev.items()}}
        )
        self.student_inputs_fingerprint = fingerprint(
            {
                "data": self.data_fingerprint,
                "vocabulary": list(self.vocabulary.tokens),
                "embeddings": self.embeddings.summary(),
            }
        )
        stats = {
            "task": self.task.name,
            "source": config.data.data_source,
            "splits": {"train": statistics(self.train, self.task, self.vocabulary.tokens)}
            | {split: statistics(examples, self.task, self.vocabulary.tokens) for split, examples in self.dev.items()},
            "vocabulary_size": len(self.vocabulary),
            "embeddings": self.embeddings.summary(),
            "seconds": round(time.perf_counter() - started, 2),
        }
        if self.chief:
            write_json(os.path.join(self.workdir, "data_stats.json"), stats)
        return stats

    # --------------------------------------------------------------------------------------- teacher

    def teacher_depends_on(self) -> dict[str, Any]:
        settings = self._settings(self.config.teacher)
        if settings["teacher_ensemble"] == 1:
            settings.pop("teacher_ensemble")  # keeps the fingerprints of runs from before the flag
        return {"data": self.data_fingerprint, "teacher": settings, "seed": self.config.seed}

    def run_teacher(self, results: dict[str, Any]) -> dict[str, Any] | None:
        from bilstm_kd import teacher as teacher_lib

        def fine_tune() -> dict[str, Any]:
            first_dev = self.dev[self.task.dev_splits[0]]
            model, _ = teacher_lib.fine_tune_teacher(
                self.config.teacher,
                self.task,
                self.train,
                first_dev,
                self.paths["teacher"],
                self.config.seed,
                self.verbose,
                strategy=self.strategy,
            )
            if self.config.distribute.strategy == "default":
                self._teacher = model  # otherwise `teacher_model` loads it onto this worker's devices
            dev_metrics = {
                split: teacher_lib.evaluate_teacher(model, examples, self.task, self.config.teacher.label_batch_size)
                for split, examples in self.dev.items()
            }
            self.log(f"[teacher] dev: {dev_metrics}")
            return {
                "dev": dev_metrics,
                "teacher_fingerprint": teacher_lib.saved_teacher_fingerprint(
                    self.paths["teacher"], self.config.teacher.teacher_ensemble
                ),
                "wrote": self.paths["teacher"],
            }

        return self._stage("teacher", self.teacher_depends_on(), fine_tune)

    def teacher_model(self):
        """The fine-tuned teacher, loaded onto this worker's devices (for labelling and the report)."""
        if self._teacher is None:
            from bilstm_kd.teacher import load_fine_tuned_teacher

            with distribute.local_strategy(self.strategy).scope():
                self._teacher = load_fine_tuned_teacher(self.paths["teacher"], self.config.teacher.teacher_ensemble)
        return self._teacher

    # --------------------------------------------------------------------------------- transfer set

    def augment_depends_on(self) -> dict[str, Any]:
        return {"data": self.data_fingerprint, "augment": self._settings(self.config.augment), "seed": self.config.seed}

    def run_augment(self, results: dict[str, Any]) -> dict[str, Any] | None:
        from bilstm_kd.transfer import build_transfer_set

        def augment() -> dict[str, Any]:
            store = build_transfer_set(
                self.train, self.task, self.config.augment, self.config.seed, self.paths["augmented"], self.paths["pos"]
            )
            statistics = store.manifest["statistics"]
            self.log(f"[augment] transfer set: {statistics}")
            return {"statistics": statistics, "store_fingerprint": store.fingerprint, "wrote": self.paths["augmented"]}

        return self._stage("augment", self.augment_depends_on(), augment)

    def run_label(self, results: dict[str, Any]) -> dict[str, Any] | None:
        from bilstm_kd.labelling import label_transfer_set
        from bilstm_kd.shards import ShardedRecords

        if "teacher" not in results or "augment" not in results:
            return None
        teacher_outputs, augment_outputs = results["teacher"], results["augment"]

        def label() -> dict[str, Any]:
            source = ShardedRecords.open_existing(self.paths["augmented"])
            store = label_transfer_set(
                self.teacher_model(),
                source,
                self.paths["labelled"],
                self.task,
                batch_size=self.config.teacher.label_batch_size,
                teacher_fingerprint=teacher_outputs["teacher_fingerprint"],
                verbose=self.verbose,
                strategy=self.strategy,
            )
            return {"statistics": store.manifest.get("statistics", {}), "wrote": self.paths["labelled"]}

        depends_on = {
            "teacher": teacher_outputs["teacher_fingerprint"],
            "transfer_set": augment_outputs["store_fingerprint"],
        }
        return self._stage("label", depends_on, label)

    # ------------------------------------------------------------------------------------- students

    def _tokenizer(self):
        """The student's tokenizer, built once per run (its lookup table is as large as the vocabulary)."""
        if self._word_tokenizer is None:
            from bilstm_kd.vocab import WordTokenizer

            self._word_tokenizer = WordTokenizer(self.vocabulary.tokens, self.config.student.max_length)
        return self._word_tokenizer

    def _dev_batches(self, examples: Examples):
        from bilstm_kd.training import example_batches

        batches = example_batches(examples.to_dataset(), self._tokenizer(), self.task.is_pair, batch_size=256)
        return distribute.shard_by_data(batches)

    def _transfer_batches(self):
        """The labelled transfer set, shuffled and bucketed by length: the distilled student's training data."""
        from bilstm_kd.records import parse_records
        from bilstm_kd.shards import ShardedRecords
        from bilstm_kd.training import transfer_batches

        store = ShardedRecords.open_existing(self.paths["labelled"])
        records = parse_records(store.dataset(), self.task.is_pair, self.task.num_classes)
        batch_size = self.config.distill.batch_size
        return transfer_batches(records, self._tokenizer(), self.task.is_pair, batch_size, seed=self.student_seed)

    def _gold_batches(self):
        """The gold-labelled training set, shuffled and bucketed by length: the no-teacher baseline's data."""
        from bilstm_kd.training import example_batches

        return example_batches(
            self.train.to_dataset(),
            self._tokenizer(),
            self.task.is_pair,
            self.config.distill.batch_size,
            shuffle=True,
            seed=self.student_seed,
        )

    def _train(self, directory: str, alpha: float, train_batches: Callable[[], Any]) -> dict[str, Any]:
        """Builds a fresh student and trains it on `train_batches()` (resuming from `directory`); returns
        metrics and history."""
        import keras

        from bilstm_kd.distiller import Distiller
        from bilstm_kd.students import build_student
        from bilstm_kd.training import evaluate_student, train_student

        # Seeded before the dataset exists: tf.data's shuffle seeds take the global seed as well as their own,
        # so the batch order would otherwise depend on whichever stage last set it in this process.
        keras.utils.set_random_seed(self.student_seed)
        train_dataset = train_batches()
        distill = self.config.distill
        with self.strategy.scope():
            student = build_student(self.config.student, self.task, len(self.vocabulary), self.embeddings.weights)
            distiller = Distiller(
                student,
                alpha=alpha,
                distill_loss=distill.distill_loss,
                mse_reduction=distill.mse_reduction,
                temperature=distill.temperature,
                num_classes=self.task.num_classes,
                task_metrics=self.task.metrics,
            )
        first_dev = self._dev_batches(self.dev[self.task.dev_splits[0]])
        summary = train_student(
            distiller,
            distribute.shard_by_data(train_dataset),
            first_dev,
            distill,
            directory,
            verbose=self.verbose,
            backup_steps=self.config.distribute.backup_steps,
        )
        dev_metrics = {
            split: evaluate_student(student, self._dev_batches(examples), self.task)
            for split, examples in self.dev.items()
        }
        return {
            "dev": dev_metrics,
            "training": {key: value for key, value in summary.items() if key != "history"},
            "history": summary.get("history", {}),
            "student_path": os.path.join(directory, "student.keras"),
            "wrote": directory,
        }

    @property
    def student_seed(self) -> int:
        """Seeds the students' weights, dropout and batch order: --student_seed, or --seed when it is -1."""
        student_seed = self.config.distill.student_seed
        return self.config.seed if student_seed == -1 else student_seed

    def student_depends_on(self) -> dict[str, Any]:
        distill = self._settings(self.config.distill)
        distill.pop("baseline")
        distill.pop("student_seed")  # as "seed" below: the default keeps the fingerprints of earlier runs
        return {
            "student_inputs": self.student_inputs_fingerprint,
            "student": self._settings(self.config.student),
            "distill": distill,
            "seed": self.student_seed,
        }

    def run_distill(self, results: dict[str, Any]) -> dict[str, Any] | None:
        if "label" not in results:
            return None

        def distill() -> dict[str, Any]:
            outputs = self._train(self.paths["distill"], self.config.distill.alpha, self._transfer_batches)
            self.log(f"[distill] dev: {outputs['dev']}")
            return outputs

        # The labelling's fingerprint names the teacher's weights and the transfer set: a relabelling reruns this.
        depends_on = {**self.student_depends_on(), "label": self.fingerprints["label"]}
        return self._stage("distill", depends_on, distill, owned=(self.paths["distill"],), continues=_more_epochs)

    def run_baseline(self, results: dict[str, Any]) -> dict[str, Any] | None:
        def baseline() -> dict[str, Any]:
            outputs = self._train(self.paths["baseline"], 1.0, self._gold_batches)
            self.log(f"[baseline] dev: {outputs['dev']}")
            return outputs

        return self._stage(
            "baseline", self.student_depends_on(), baseline, owned=(self.paths["baseline"],), continues=_more_epochs
        )

    # ---------------------------------------------------------------------------------------- export

    def run_export(self, results: dict[str, Any]) -> dict[str, Any] | None:
        from bilstm_kd import export
        from bilstm_kd.students import load_student

        if "distill" not in results:
            return None
        distill_outputs = results["distill"]

        def export_student() -> dict[str, Any]:
            student = load_student(distill_outputs["student_path"])
            max_length = self.config.student.max_length
            directory = self.paths["export"]
            os.makedirs(directory, exist_ok=True)
            outputs: dict[str, Any] = {"wrote": directory}
            first_dev = self.dev[self.task.dev_splits[0]]
            if self.config.export.export_saved_model:
                path = export.export_saved_model(
                    student, self.vocabulary, self.task, max_length, os.path.join(directory, "saved_model")
                )
                sample = tuple(column[:64] for column in first_dev.texts)
                outputs["saved_model"] = {
                    "path": path,
                    "bytes": _directory_bytes(path),
                    "verification": export.verify_saved_model(
                        path, student, self.vocabulary, max_length, sample[0] if len(sample) == 1 else sample
                    ),
                }
            if self.config.export.export_tflite:
                path = export.export_tflite(
                    student,
                    self.task,
                    self.vocabulary,
                    max_length,
                    os.path.join(directory, "student.tflite"),
                    quantization=self.config.export.tflite_quantization,
                )
                tokenizer = self._tokenizer_fixed()
                ids = tuple(
                    tokenizer(np.asarray(column, dtype=object).astype(str)).numpy() for column in first_dev.texts
                )
                verification = export.verify_tflite(path, student, ids[0] if len(ids) == 1 else ids)
                dev_metrics = {}
                for split, examples in self.dev.items():
                    split_texts = examples.texts[0] if not self.task.is_pair else tuple(examples.texts)
                    logits = export.tflite_predict_texts(path, split_texts)
                    dev_metrics[split] = self.task.evaluate(examples.labels, np.argmax(logits, axis=-1))
                outputs["tflite"] = {
                    "path": path,
                    "bytes": os.path.getsize(path),
                    "quantization": self.config.export.tflite_quantization,
                    "verification": verification,
                    "dev": dev_metrics,
                }
                self.log(f"[export] TFLite dev: {dev_metrics}; vs Keras: {verification}")
            return outputs

        # The distill stage's fingerprint tells students apart that trained alike (say, two --student_seed).
        depends_on = {
            "student": distill_outputs["training"],
            "distill": self.fingerprints["distill"],
            "export": self._settings(self.config.export),
        }
        return self._stage("export", depends_on, export_student, owned=(self.paths["export"],))

    def _tokenizer_fixed(self):
        from bilstm_kd.vocab import WordTokenizer

        return WordTokenizer(self.vocabulary.tokens, self.config.student.max_length, pad_to_max_length=True)

    # ---------------------------------------------------------------------------------------- report

    def _student_entry(self, outputs: dict[str, Any], batches: dict[str, list]) -> dict[str, Any]:
        from bilstm_kd import speed
        from bilstm_kd.students import load_student

        student = load_student(outputs["student_path"])
        embedding = sum(int(np.prod(weight.shape)) for weight in student.weights if "embedding" in weight.path)
        forward = speed.compiled_forward(student)
        return {
            "dev": outputs["dev"],
            "parameters": {"embedding": embedding, "non_embedding": int(student.count_params()) - embedding},
            "file_bytes": os.path.getsize(outputs["student_path"]),
            "throughput": {
                name: speed.throughput(forward, batch, self.timing_seconds)["examples_per_second"]
                for name, batch in batches.items()
            },
            "history": outputs.get("history", {}),
        }

    def run_report(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        from bilstm_kd import speed
        from bilstm_kd.report import write_report

        started = time.perf_counter()
        first_dev = self.dev[self.task.dev_splits[0]]
        texts = tuple(column[:SPEED_EXAMPLES] for column in first_dev.texts)
        models: dict[str, Any] = {}
        if "teacher" in results:
            teacher = self.teacher_model()
            from bilstm_kd.teacher import teacher_size

            size = teacher_size(teacher, sequence_length=teacher.sequence_length)
            embedding = size["embedding_parameters"]
            forward = speed.compiled_forward(teacher)
            batches = {
                "batch_512": speed.teacher_batches(teacher.preprocessor, texts, 512),
                "batch_1": speed.teacher_batches(teacher.preprocessor, tuple(column[:32] for column in texts), 1),
            }
            models["teacher"] = {
                "dev": results["teacher"]["dev"],
                "members": self.config.teacher.teacher_ensemble,
                "parameters": {"embedding": embedding, "non_embedding": size["parameters"] - embedding},
                "file_bytes": _directory_bytes(self.paths["teacher"]),
                "flops_per_example": size["flops_per_example"],
                "throughput": {
                    name: speed.throughput(forward, batch, self.timing_seconds)["examples_per_second"]
                    for name, batch in batches.items()
                },
            }
        tokenizer = self._tokenizer()
        student_batches = {
            "batch_512": speed.student_batches(tokenizer, texts, 512),
            "batch_1": speed.student_batches(tokenizer, tuple(column[:256] for column in texts), 1),
        }
        for name in ("distill", "baseline"):
            if name in results:
                models["student" if name == "distill" else "baseline"] = self._student_entry(
                    results[name], student_batches
                )
        tflite = results.get("export", {}).get("tflite")
        if tflite:
            models["student_tflite"] = {
                "dev": tflite["dev"],
                "file_bytes": tflite["bytes"],
                "verification": {k: tflite["verification"][k] for k in ("max_abs_diff", "label_agreement")},
            }
        report: dict[str, Any] = {
            "task": self.task.name,
            "metrics": list(self.task.metrics),
            "models": models,
            "stages": self.stage_seconds,
            "data": {"train": len(self.train), **{split: len(examples) for split, examples in self.dev.items()}},
        }
        if "teacher" in models and "student" in models:
            report["speedup"] = {
                name: models["student"]["throughput"][name] / models["teacher"]["throughput"][name]
                for name in ("batch_512", "batch_1")
            }
        if "augment" in results:
            report["transfer_set"] = results["augment"]["statistics"]
        self.stage_seconds["report"] = {"status": "ran", "seconds": round(time.perf_counter() - started, 1)}
        paths = write_report(report, self.workdir)
        self.log(f"[report] wrote {', '.join(paths.values())}")
        return report

    # ------------------------------------------------------------------------------------------- run

    def run(self) -> dict[str, Any]:
        os.makedirs(self.workdir, exist_ok=True)
        if self.chief:
            write_json(os.path.join(self.workdir, "config.json"), self.config.to_dict())
        self.log(f"Devices: {distribute.describe(self.strategy)}")
        stats = self.prepare()
        self.log(format_statistics(stats))
        runners = {
            "teacher": self.run_teacher,
            "augment": self.run_augment,
            "label": self.run_label,
            "distill": self.run_distill,
            "baseline": self.run_baseline,
            "export": self.run_export,
        }
        # The report shows every model whose outputs are up to date, even from stages not run now.
        candidates = set(runners) if "report" in self.requested else self.needed
        if not self.config.distill.baseline:
            candidates.discard("baseline")
        if not self.chief:
            candidates.difference_update(CHIEF_ALONE)
        results: dict[str, dict[str, Any]] = {}
        for stage, runner in runners.items():
            if stage in candidates:
                outputs = runner(results)
                if outputs is not None:
                    results[stage] = outputs
        if "report" in self.requested and self.chief:
            return self.run_report(results)
        return {"stages": self.stage_seconds}


def format_statistics(stats: dict[str, Any]) -> str:
    lines = [f"Task {stats['task']} ({stats['source']})"]
    for split, values in stats["splits"].items():
        balance = ", ".join(f"{label}: {count}" for label, count in values["labels"].items())
        words = "  ".join(
            f"{column} words mean {values[column + '_words']['mean']} max {values[column + '_words']['max']}"
            + _unknown_words(values[column + "_words"])
            for column in ("text_a", "text_b")
            if column + "_words" in values
        )
        lines.append(f"  {split:<15} {values['rows']:>8,} rows  labels {balance}  {words}")
    embeddings = stats["embeddings"]
    lines.append(f"  vocabulary      {stats['vocabulary_size']:,} tokens (3 reserved)")
    lines.append(
        f"  word vectors    {embeddings['source']}, {embeddings['dimension']}-d, "
        f"{embeddings['pretrained_words']:,} words pretrained ({100 * embeddings['coverage']:.1f}% of the vocabulary)"
    )
    return "\n".join(lines)


def _unknown_words(words: dict[str, Any]) -> str:
    if "unknown" not in words:
        return ""
    return f" ({100 * words['unknown']:.1f}% unknown, in {100 * words['rows_with_unknown']:.1f}% of rows)"


def run(config: RunConfig, verbose: int = 1) -> dict[str, Any]:
    """Runs the configured stages in `config.workdir`."""
    return Pipeline(config, verbose=verbose).run()
