"""The whole pipeline on tiny data and a tiny teacher: resume after a kill in each stage, invalidation, --stages."""

import dataclasses
import json
import os
import pathlib
import shutil

import keras
import keras_hub
import numpy as np
import pytest
from conftest import tiny_bert_backbone

from bilstm_kd.config import (
    AugmentConfig,
    DataConfig,
    DistillConfig,
    ExportConfig,
    RunConfig,
    StudentConfig,
    TeacherConfig,
)
from bilstm_kd.export import tflite as tflite_module
from bilstm_kd.pipeline import runner
from bilstm_kd.teacher import inference, saving
from bilstm_kd.transfer.records import parse_records
from bilstm_kd.transfer.shards import ShardedRecords

POSITIVE = ["a good film", "a great movie", "very good", "the film was great", "good and great", "a very good movie"]
NEGATIVE = ["a bad film", "an awful movie", "very bad", "the film was awful", "bad and awful", "a very bad movie"]
WORDS = sorted({word for text in POSITIVE + NEGATIVE for word in text.split()})
TEACHER_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


# Statuses when only student settings changed: the teacher and the transfer set are reused.
ONLY_STUDENTS_RAN = {
    "tfidf": "up to date",
    "teacher": "up to date",
    "augment": "up to date",
    "label": "up to date",
    "distill": "ran",
    "baseline": "ran",
    "export": "ran",
}

# Statuses when only the teacher changed: the transfer set and the no-teacher baseline are reused.
RELABELLED = {
    "tfidf": "up to date",
    "teacher": "ran",
    "augment": "up to date",
    "label": "ran",
    "distill": "ran",
    "baseline": "up to date",
    "export": "ran",
}


class Killed(BaseException):
    """Stands in for the process being killed (not an Exception, so nothing on the way catches it)."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    data = root / "SST-2"
    data.mkdir()
    rows = [f"{text}\t1" for text in POSITIVE] + [f"{text}\t0" for text in NEGATIVE]
    (data / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows * 2) + "\n")
    (data / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows[::2]) + "\n")
    preset = root / "teacher"
    backbone = tiny_bert_backbone(len(TEACHER_VOCABULARY))
    backbone.save_to_preset(str(preset))
    keras_hub.models.BertTokenizer(TEACHER_VOCABULARY, lowercase=True).save_to_preset(str(preset))
    return data, preset


def tiny_config(inputs, workdir, stages="all", **augment):
    data, preset = inputs
    return RunConfig(
        workdir=str(workdir),
        stages=stages,
        data=DataConfig(task="sst2", data_source="glue", data_dir=str(data)),
        teacher=TeacherConfig(
            teacher=str(preset),
            teacher_epochs=1,
            teacher_batch_size=8,
            teacher_max_length=16,
            label_batch_size=16,
            mixed_precision="off",  # float32 on every machine: tests compare labels exactly
        ),
        augment=AugmentConfig(**{"n_iter": 2, "p_pos": 0.0, "augment_shards": 3, **augment}),
        student=StudentConfig(
            tokenizer="glue",
            embeddings="random",
            embedding_dim=8,
            lstm_units=4,
            hidden_units=4,
            max_length=8,
            multichannel=True,
        ),
        distill=DistillConfig(batch_size=8, epochs=3, patience=0),
        export=ExportConfig(tflite_quantization="none"),
    )


def run(config):
    return runner.Pipeline(config, verbose=0, timing_seconds=0.0).run()


def statuses(report):
    return {stage: info["status"] for stage, info in report["stages"].items() if stage != "report"}


def mtime(path):
    return os.path.getmtime(path)


def kill_on_call(monkeypatch, owner, name, call_number=1):
    """Makes `owner.name` raise `Killed` on its `call_number`-th call (earlier calls go through)."""
    original = getattr(owner, name)
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call_number:
            raise Killed(f"killed in {name}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


def test_resume_after_a_kill_in_each_stage(inputs, tmp_path, monkeypatch):
    config = tiny_config(inputs, tmp_path / "run")
    workdir = pathlib.Path(config.workdir)

    # Teacher: killed after fine-tuning saved the teacher, while it was being evaluated.
    with monkeypatch.context() as patch:
        kill_on_call(patch, inference, "evaluate_teacher")
        with pytest.raises(Killed):
            run(config)
    saved_teacher = workdir / "teacher" / "teacher.keras"
    teacher_written = mtime(saved_teacher)
    assert json.loads((workdir / "stages" / "teacher.json").read_text())["status"] == "running"

    # Augmentation: killed while writing its second shard.
    with monkeypatch.context() as patch:
        kill_on_call(patch, ShardedRecords, "write_shard", call_number=2)
        with pytest.raises(Killed):
            run(config)
    assert mtime(saved_teacher) == teacher_written  # the finished fine-tuning was reused, not repeated
    first_shard = workdir / "transfer" / "augmented" / "shard-00000-of-00003.tfrecord"
    shard_written = mtime(first_shard)

    # Labelling: killed while writing its second shard (the transfer set finishes first).
    with monkeypatch.context() as patch:
        kill_on_call(patch, ShardedRecords, "write_shard", call_number=4)
        with pytest.raises(Killed):
            run(config)
    assert mtime(first_shard) == shard_written
    first_labelled = workdir / "transfer" / "labelled" / "shard-00000-of-00003.tfrecord"
    labelled_written = mtime(first_labelled)

    # Distillation: killed at the end of the second epoch, after its checkpoint.
    with monkeypatch.context() as patch:
        original = keras.callbacks.TensorBoard.on_epoch_end

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1 and "distilled" in self.log_dir:
                raise Killed("killed in epoch 2")
            return original(self, epoch, logs)

        patch.setattr(keras.callbacks.TensorBoard, "on_epoch_end", on_epoch_end)
        with pytest.raises(Killed):
            run(config)
    assert mtime(first_labelled) == labelled_written
    state = json.loads((workdir / "student" / "distilled" / "training_state.json").read_text())
    assert state["epochs_completed"] == 2

    # Export: killed while converting to TFLite.
    with monkeypatch.context() as patch:
        kill_on_call(patch, tflite_module, "export_tflite")
        with pytest.raises(Killed):
            run(config)
    distilled = json.loads((workdir / "stages" / "distill.json").read_text())
    assert distilled["status"] == "done"
    assert len(distilled["outputs"]["history"]["loss"]) == 3  # two epochs before the kill, one after

    report = run(config)
    assert statuses(report) == {
        "tfidf": "up to date",
        "teacher": "up to date",
        "augment": "up to date",
        "label": "up to date",
        "distill": "up to date",
        "baseline": "up to date",
        "export": "ran",
    }
    assert mtime(saved_teacher) == teacher_written
    assert (workdir / "export" / "student.tflite").exists() and (workdir / "export" / "saved_model").is_dir()
    written = json.loads((workdir / "report.json").read_text())
    assert set(written["models"]) == {"teacher", "student", "baseline", "tfidf", "student_tflite"}
    assert written["transfer_set"]["originals"] == 24


def test_changed_settings_rerun_exactly_the_stages_that_depend_on_them(inputs, tmp_path):
    config = tiny_config(inputs, tmp_path / "run")
    first = run(config)
    assert set(statuses(first).values()) == {"ran"}
    assert set(statuses(run(config)).values()) == {"up to date"}

    changed = tiny_config(inputs, tmp_path / "run", p_mask=0.3)
    assert statuses(run(changed)) == {
        "tfidf": "up to date",
        "teacher": "up to date",
        "augment": "ran",
        "label": "ran",
        "distill": "ran",
        "baseline": "up to date",
        "export": "ran",
    }
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert written["augment"]["p_mask"] == 0.3

    # Word vectors from the pretrained teacher: only the students depend on them.
    student = dataclasses.replace(changed.student, embeddings="teacher")
    assert statuses(run(dataclasses.replace(changed, student=student))) == ONLY_STUDENTS_RAN
    vectors = json.loads((tmp_path / "run" / "data_stats.json").read_text())["embeddings"]
    assert vectors["source"].startswith(f"--teacher={inputs[1]}") and vectors["dimension"] == 8
    assert vectors["coverage"] == 1.0  # every training word is in the tiny teacher's vocabulary

    # Labelling with the int8 TFLite copy: a new labelled store, the teacher is not fine-tuned again.
    int8 = dataclasses.replace(changed.teacher, label_precision="dynamic_int8", label_check_margin=0.5)
    assert statuses(run(dataclasses.replace(changed, student=student, teacher=int8))) == {
        "tfidf": "up to date",
        "teacher": "up to date",
        "augment": "up to date",
        "label": "ran",
        "distill": "ran",
        "baseline": "up to date",
        "export": "ran",
    }
    statistics = json.loads((tmp_path / "run" / "stages" / "label.json").read_text())["outputs"]["statistics"]
    assert 0 <= statistics["relabelled_by_teacher_in_this_run"] <= statistics["examples"]


def test_more_student_epochs_continue_the_finished_training_and_fewer_restart_it(inputs, tmp_path):
    config = tiny_config(inputs, tmp_path / "run")
    run(config)
    state_path = tmp_path / "run" / "student" / "distilled" / "training_state.json"
    first_three = json.loads(state_path.read_text())["history"]["loss"]

    five = dataclasses.replace(config, distill=dataclasses.replace(config.distill, epochs=5, patience=4))
    assert statuses(run(five)) == ONLY_STUDENTS_RAN
    losses = json.loads(state_path.read_text())["history"]["loss"]
    assert len(losses) == 5 and losses[:3] == first_three  # epochs 1-3 were kept, not trained again

    two = dataclasses.replace(config, distill=dataclasses.replace(config.distill, epochs=2))
    run(two)
    assert len(json.loads(state_path.read_text())["history"]["loss"]) == 2  # fewer epochs: trained afresh


def test_student_seed_retrains_only_the_students(inputs, tmp_path):
    config = tiny_config(inputs, tmp_path / "run")
    run(config)
    state_path = tmp_path / "run" / "student" / "distilled" / "training_state.json"
    seed_losses = json.loads(state_path.read_text())["history"]["loss"]

    def with_student_seed(value):
        return dataclasses.replace(config, distill=dataclasses.replace(config.distill, student_seed=value))

    # Naming the run's own seed changes nothing: runs from before the flag stay up to date.
    assert set(statuses(run(with_student_seed(config.seed))).values()) == {"up to date"}
    assert statuses(run(with_student_seed(config.seed + 1))) == ONLY_STUDENTS_RAN
    assert json.loads(state_path.read_text())["history"]["loss"] != seed_losses


def test_a_students_training_does_not_depend_on_the_stages_run_before_it(inputs, tmp_path):
    """A student's weights and batch order come from its seed alone, whatever earlier stages did to the
    process's random state (a whole run, against a later process that trains only that student)."""
    full = tmp_path / "full"
    run(tiny_config(inputs, full))  # teacher, then distilled student, then baseline, in one process
    again = tmp_path / "again"
    shutil.copytree(full, again)
    for stage, student in (("distill", "distilled"), ("baseline", "baseline")):
        shutil.rmtree(again / "student" / student)
        (again / "stages" / f"{stage}.json").unlink()
        keras.utils.set_random_seed(1234)  # whatever another process might have left
        run(tiny_config(inputs, again, stages=stage))
        losses = [
            json.loads((workdir / "student" / student / "training_state.json").read_text())["history"]["loss"]
            for workdir in (full, again)
        ]
        assert losses[0] == losses[1], student


def test_a_relabelling_retrains_the_distilled_student(inputs, tmp_path, monkeypatch):
    """Distillation depends on the labelling itself, not on figures that merely tend to differ between two."""
    from bilstm_kd.transfer import labelling

    label_transfer_set = labelling.label_transfer_set

    def same_statistics_every_time(*args, **kwargs):
        store = label_transfer_set(*args, **kwargs)
        manifest = {**store.manifest, "statistics": {"examples": 1}}
        pathlib.Path(store.manifest_path).write_text(json.dumps(manifest))
        return store

    monkeypatch.setattr(labelling, "label_transfer_set", same_statistics_every_time)
    config = tiny_config(inputs, tmp_path / "run")
    run(config)
    teacher = dataclasses.replace(config.teacher, teacher_learning_rate=1e-3)
    assert statuses(run(dataclasses.replace(config, teacher=teacher))) == RELABELLED


def test_an_ensemble_teacher_labels_with_the_mean_of_its_members(inputs, tmp_path):
    config = tiny_config(inputs, tmp_path / "run")
    single = run(config)
    pair = dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, teacher_ensemble=2))
    ensemble = run(pair)
    assert statuses(ensemble) == RELABELLED
    workdir = tmp_path / "run"
    directories = saving.member_directories(workdir / "teacher", 2)
    members = [saving.load_fine_tuned_teacher(path) for path in directories]
    store = ShardedRecords.open_existing(str(workdir / "transfer" / "labelled"))
    records = list(parse_records(store.dataset(), is_pair=False, num_classes=2).take(20).as_numpy_iterator())
    texts = [record["text_a"].decode() for record in records]
    expected = np.mean([inference.teacher_logits(member, texts) for member in members], axis=0)
    np.testing.assert_allclose([record["teacher_logits"] for record in records], expected, atol=1e-5)
    assert ensemble["models"]["teacher"]["members"] == 2
    parameters = single["models"]["teacher"]["parameters"]
    assert ensemble["models"]["teacher"]["parameters"] == {key: 2 * value for key, value in parameters.items()}
    assert "BERT teacher (ensemble of 2)" in (workdir / "report.md").read_text()


def test_stages_subset(inputs, tmp_path):
    with pytest.raises(runner.StageError, match=r"Stage 'teacher' has no up-to-date output.*--stages"):
        run(tiny_config(inputs, tmp_path / "run", stages="distill"))
    result = run(tiny_config(inputs, tmp_path / "run", stages="augment"))
    assert set(result["stages"]) == {"augment"}
    assert not (tmp_path / "run" / "teacher").exists()
    assert runner.needed_stages({"export"}) == {"export", "distill", "label", "teacher", "augment"}


def test_baseline_epochs_change_only_the_baseline_fingerprint():
    from types import SimpleNamespace

    from bilstm_kd.pipeline import student_stages

    def depends_on(**distill):
        config = RunConfig(distill=DistillConfig(epochs=4, **distill))
        run = SimpleNamespace(
            config=config,
            inputs=SimpleNamespace(student_inputs_fingerprint="inputs"),
            student_seed=0,
            fingerprints={"label": "labels"},
        )
        return student_stages.baseline_depends_on(run, {}), student_stages.distill_depends_on(run, {})

    baseline, distill = depends_on()
    longer_baseline, same_distill = depends_on(baseline_epochs=30)
    assert same_distill == distill and distill["distill"]["epochs"] == 4
    assert longer_baseline["distill"]["epochs"] == 30 and baseline["distill"]["epochs"] == 4
    assert student_stages.more_epochs(baseline, longer_baseline)  # the baseline trains on from its epochs
    assert "baseline_epochs" not in baseline["distill"]  # runs from before the flag keep their fingerprints


def test_accelerator_flags_change_the_fingerprints_only_of_what_they_compute(monkeypatch):
    from types import SimpleNamespace

    from bilstm_kd.pipeline import student_stages, teacher_stage
    from bilstm_kd.teacher import precision

    devices = {"has_gpu": False, "has_tpu": False, "cpu_has_bfloat16": False}
    for name in devices:
        monkeypatch.setattr(precision, name, lambda name=name: devices[name])

    def fingerprints(teacher=None, student=None):
        config = RunConfig(teacher=TeacherConfig(**(teacher or {})), student=StudentConfig(**(student or {})))
        inputs = SimpleNamespace(data_fingerprint="data", student_inputs_fingerprint="inputs")
        run = SimpleNamespace(config=config, inputs=inputs, student_seed=0, fingerprints={"label": "labels"})
        return teacher_stage.depends_on(run, {}), student_stages.distill_depends_on(run, {})

    default = fingerprints()
    assert "mixed_precision" not in default[0]["teacher"]  # runs from before the flags keep their fingerprints
    # How the models run, not what they compute: a run resumes on another device or with XLA.
    assert fingerprints(teacher={"teacher_jit_compile": True}) == default
    assert fingerprints(student={"lstm_kernel": "cudnn"}) == default
    assert fingerprints(teacher={"label_precision": "dynamic_int8", "label_check_margin": 2.0}) == default
    assert fingerprints(teacher={"mixed_precision": "auto"}) == default  # float32 on a CPU without bfloat16
    mixed = fingerprints(teacher={"mixed_precision": "mixed_bfloat16"})
    assert mixed[0]["teacher"]["mixed_precision"] == "mixed_bfloat16" and mixed[1] == default[1]
    devices["has_gpu"] = True
    assert fingerprints(teacher={"mixed_precision": "auto"})[0]["teacher"]["mixed_precision"] == "mixed_float16"


def test_the_regex_tokenizer_retrains_from_the_transfer_set_on_and_exports_a_checked_mediapipe_file(inputs, tmp_path):
    pytest.importorskip("mediapipe")
    config = tiny_config(inputs, tmp_path / "run")
    run(config)
    exported = json.loads((tmp_path / "run" / "stages" / "export.json").read_text())["outputs"]
    assert "--tokenizer=regex" in exported["mediapipe"]["skipped"]  # the glue tokenizer: no MediaPipe file

    student = dataclasses.replace(config.student, tokenizer="regex")
    report = run(dataclasses.replace(config, student=student))
    # The texts have no clitics to re-join, so the teacher's data is unchanged; the transfer set is re-tokenized.
    assert statuses(report) == {
        "tfidf": "up to date",
        "teacher": "up to date",
        "augment": "ran",
        "label": "ran",
        "distill": "ran",
        "baseline": "ran",
        "export": "ran",
    }
    mobile = report["models"]["student_mediapipe"]
    assert mobile["verification"]["label_agreement"] == 1.0 and mobile["verification"]["max_abs_diff"] < 1e-5
    assert mobile["dev"]["dev"]["accuracy"] == pytest.approx(report["models"]["student"]["dev"]["dev"]["accuracy"])
    assert mobile["verification"]["length"] == 8  # the longest sentence has 4 words: the minimum length
    assert (tmp_path / "run" / "export" / "student_mediapipe.tflite").exists()
    assert "MediaPipe TextClassifier" in (tmp_path / "run" / "report.md").read_text()
