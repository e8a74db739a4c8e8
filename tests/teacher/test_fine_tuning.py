"""Fine-tuning the teacher: its schedule and batches, keeping the best epoch, reuse, ensembles."""

import dataclasses
import io
import json
import os
import pathlib
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pytest
from conftest import MAX_LENGTH, sentiment_examples

from bilstm_kd.data.tasks import get_task
from bilstm_kd.teacher import fine_tuning
from bilstm_kd.teacher.batches import training_batches
from bilstm_kd.teacher.fine_tuning import FineTuning, fine_tune_teacher
from bilstm_kd.teacher.inference import evaluate_teacher, teacher_logits
from bilstm_kd.teacher.model import BertTeacher, TeacherEnsemble
from bilstm_kd.teacher.saving import load_fine_tuned_teacher, member_directories, saved_teacher_fingerprint
from bilstm_kd.teacher.schedule import WarmupLinearDecay


def test_warmup_linear_decay():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0])
    assert WarmupLinearDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupLinearDecay(1e-3, warmup_steps=20, total_steps=10)


def test_training_batches_cover_every_example_once_and_group_lengths():
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    batches = training_batches(lengths, batch_size=10, rng=np.random.default_rng(1), window=20)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([lengths[batch].max() - lengths[batch].min() for batch in batches])
    assert spread < 5  # random batches of 10 would spread over ~45 word pieces
    again = training_batches(lengths, batch_size=10, rng=np.random.default_rng(1), window=20)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_training_batches_are_full_when_the_examples_do_not_fill_the_last_one():
    lengths = np.random.default_rng(0).integers(3, 60, size=1003)
    batches = training_batches(lengths, batch_size=10, rng=np.random.default_rng(1))
    assert [len(batch) for batch in batches] == [10] * 101
    counts = np.bincount(np.concatenate(batches), minlength=1003)
    assert counts.min() == 1 and counts.sum() - 1003 == 7  # all once, 7 drawn again to fill the last batch
    tiny = training_batches(np.array([5, 6, 7]), batch_size=8, rng=np.random.default_rng(2))
    assert [len(batch) for batch in tiny] == [8]


def must_not_train(*args, **kwargs):
    """Stands in for `loading.load_teacher`, which only a fine-tuning calls."""
    raise AssertionError("fine-tuning was repeated")


def test_fine_tuning_learns_saves_and_is_reused(preset_directory, tmp_path, monkeypatch):
    config = FineTuning(
        teacher=preset_directory,
        pooling="mean",
        epochs=3,
        learning_rate=3e-3,
        warmup_fraction=0.1,
        batch_size=4,
        max_length=MAX_LENGTH,
    )
    task = get_task("sst2")
    train, dev = sentiment_examples(40), sentiment_examples(10)
    directory = str(tmp_path / "teacher")
    teacher, metrics = fine_tune_teacher(config, task, train, dev, directory, seed=0, verbose=0)

    with open(os.path.join(directory, "teacher.json")) as file:
        metadata = json.load(file)
    losses = [epoch["loss"] for epoch in metadata["history"]]
    assert losses[-1] < losses[0]
    assert metrics["accuracy"] > 0.5
    assert metadata["dev_metrics"] == metrics
    assert metadata["best_epoch"] in (1, 2, 3)
    # Weights only: AdamW's moments would triple the size of a real teacher's file.
    with zipfile.ZipFile(os.path.join(directory, "teacher.keras")) as archive:
        weights_file = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights_file) as weights:
        assert "layers" in weights and "optimizer" not in weights
    assert evaluate_teacher(teacher, dev, task) == pytest.approx(metrics)

    # Same settings and data: the saved teacher is returned, nothing is trained.
    monkeypatch.setattr(fine_tuning, "load_teacher", must_not_train)
    reused, reused_metrics = fine_tune_teacher(config, task, train, dev, directory, seed=0, verbose=0)
    assert reused_metrics == metrics
    np.testing.assert_allclose(teacher_logits(reused, dev.texts[0]), teacher_logits(teacher, dev.texts[0]), atol=1e-6)
    fingerprint = saved_teacher_fingerprint(directory)
    np.testing.assert_allclose(
        teacher_logits(load_fine_tuned_teacher(directory), dev.texts[0]), teacher_logits(teacher, dev.texts[0])
    )

    # The labelling batch size does not change the teacher: still reused.
    relabel = dataclasses.replace(config, eval_batch_size=7)
    assert fine_tune_teacher(relabel, task, train, dev, directory, seed=0, verbose=0)[1] == metrics
    assert isinstance(fingerprint, str) and fingerprint

    # Other data, settings or seed: trained again (load_teacher is called), and the old teacher is removed
    # before training starts, so an interrupted retraining never leaves a stale teacher to be reused.
    variants = {
        "data": (config, sentiment_examples(36), 0),
        "settings": (dataclasses.replace(config, epochs=1), train, 0),
        "seed": (config, train, 1),
    }
    for name, (changed_config, changed_train, seed) in variants.items():
        copy = str(tmp_path / name)
        shutil.copytree(directory, copy)
        with pytest.raises(AssertionError, match="repeated"):
            fine_tune_teacher(changed_config, task, changed_train, dev, copy, seed=seed, verbose=0)
        with pytest.raises(FileNotFoundError, match="no finished teacher"):
            saved_teacher_fingerprint(copy)


def test_an_ensemble_fine_tunes_each_member_with_its_own_seed_and_reuses_them(preset_directory, tmp_path, monkeypatch):
    single = FineTuning(
        teacher=preset_directory, pooling="mean", epochs=1, learning_rate=3e-3, batch_size=4, max_length=MAX_LENGTH
    )
    pair = dataclasses.replace(single, members=2)
    task = get_task("sst2")
    train, dev = sentiment_examples(24), sentiment_examples(10)
    directory = str(tmp_path / "teacher")
    ensemble, metrics = fine_tune_teacher(pair, task, train, dev, directory, seed=3, verbose=0)

    assert isinstance(ensemble, TeacherEnsemble) and metrics == evaluate_teacher(ensemble, dev, task)
    records = [json.loads(pathlib.Path(path, "teacher.json").read_text()) for path in member_directories(directory, 2)]
    assert [record["depends_on"]["seed"] for record in records] == [3, 4]
    assert "members" not in records[0]["depends_on"]["teacher"]  # a member is what a single teacher is
    assert saved_teacher_fingerprint(directory, 2) not in {record["teacher_fingerprint"] for record in records}
    reloaded = teacher_logits(load_fine_tuned_teacher(directory, 2), dev.texts[0])
    np.testing.assert_allclose(reloaded, teacher_logits(ensemble, dev.texts[0]), atol=1e-6)

    # Both members are reused; back to one teacher, the first member is that teacher and the second goes.
    monkeypatch.setattr(fine_tuning, "load_teacher", must_not_train)
    assert fine_tune_teacher(pair, task, train, dev, directory, seed=3, verbose=0)[1] == metrics
    teacher, _ = fine_tune_teacher(single, task, train, dev, directory, seed=3, verbose=0)
    assert isinstance(teacher, BertTeacher) and not os.path.exists(os.path.join(directory, "member_2"))
    assert saved_teacher_fingerprint(directory) == records[0]["teacher_fingerprint"]
    with pytest.raises(FileNotFoundError, match="member_2 holds no finished teacher fine-tuning"):
        saved_teacher_fingerprint(directory, 2)


class _Killed(Exception):
    pass


class _Kill(keras.callbacks.Callback):
    """Stands in for a killed process: fine-tuning stops in epoch `epoch` (1-based) after `step` steps of it, or
    at its end (`step=None`), after the checkpoint callback has run."""

    def __init__(self, epoch, step=None):
        super().__init__()
        self.epoch, self.step, self.current = epoch, step, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and self.step == batch + 1:
            raise _Killed

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch and self.step is None:
            raise _Killed


@pytest.mark.parametrize("epoch, step", [(1, None), (2, 3)], ids=["after_epoch_1", "epoch_2_step_3"])
def test_an_interrupted_fine_tuning_resumes_from_its_last_backup_as_if_never_stopped(
    preset_directory, tmp_path, epoch, step
):
    config = FineTuning(
        teacher=preset_directory,
        pooling="mean",
        epochs=2,
        learning_rate=3e-3,
        batch_size=4,
        max_length=MAX_LENGTH,
        backup_steps=2,  # 4 steps an epoch: a backup after step 2, and at the epoch's end
    )
    task, train, dev = get_task("sst2"), sentiment_examples(16), sentiment_examples(10)
    whole = tmp_path / "whole"
    teacher, metrics = fine_tune_teacher(config, task, train, dev, str(whole), verbose=0)

    interrupted = tmp_path / "interrupted"
    with pytest.raises(_Killed):
        fine_tune_teacher(config, task, train, dev, str(interrupted), verbose=0, callbacks=[_Kill(epoch, step)])
    state = json.loads((interrupted / "resume" / "state.json").read_text())
    assert (state["epochs_done"], state["steps_done"]) == ((1, 0) if step is None else (1, 2))
    assert not (interrupted / "teacher.json").exists()
    if step is None:  # other settings do not take up that resume point: they start afresh and remove it
        other = tmp_path / "other"
        shutil.copytree(interrupted, other)
        fine_tune_teacher(dataclasses.replace(config, epochs=1), task, train, dev, str(other), verbose=0)
        assert json.loads((other / "teacher.json").read_text())["history"][0]["epoch"] == 1
        assert not (other / "resume").exists()

    resumed, resumed_metrics = fine_tune_teacher(config, task, train, dev, str(interrupted), verbose=0)
    record, expected = (json.loads((path / "teacher.json").read_text()) for path in (interrupted, whole))
    assert [entry["epoch"] for entry in record["history"]] == [1, 2]
    assert resumed_metrics == metrics and record["best_epoch"] == expected["best_epoch"]
    # The same batches, learning rate, optimizer and dropout states: the same dev scores, losses and teacher
    # (the loss of an epoch resumed midway is the mean of its remaining steps only).
    same_loss_epochs = [0, 1] if step is None else [0]
    np.testing.assert_allclose(
        [record["history"][index]["loss"] for index in same_loss_epochs],
        [expected["history"][index]["loss"] for index in same_loss_epochs],
        atol=1e-5,
    )
    np.testing.assert_allclose(
        [entry["dev_accuracy"] for entry in record["history"]], [entry["dev_accuracy"] for entry in expected["history"]]
    )
    np.testing.assert_allclose(teacher_logits(resumed, dev.texts[0]), teacher_logits(teacher, dev.texts[0]), atol=1e-5)
    assert not (interrupted / "resume").exists()  # complete: no resume point left behind


def test_fine_tuning_stops_when_dev_stops_improving(preset_directory, tmp_path):
    # A learning rate of 1e-12 leaves dev where epoch 1 put it: no later epoch improves on it.
    still = FineTuning(
        teacher=preset_directory, pooling="mean", epochs=5, learning_rate=1e-12, batch_size=4, max_length=MAX_LENGTH
    )
    train, dev, task = sentiment_examples(16), sentiment_examples(8), get_task("sst2")
    for patience, epochs_run in ((2, 3), (0, 5)):
        directory = tmp_path / f"patience_{patience}"
        config = dataclasses.replace(still, patience=patience)
        fine_tune_teacher(config, task, train, dev, str(directory), seed=0, verbose=0)
        metadata = json.loads((directory / "teacher.json").read_text())
        assert len(metadata["history"]) == epochs_run and metadata["best_epoch"] == 1
    # Without patience the fingerprint is the one teachers had before early stopping existed.
    assert "patience" not in metadata["depends_on"]["teacher"]
