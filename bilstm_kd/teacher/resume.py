"""Resuming an interrupted teacher fine-tuning at its next epoch.

An epoch of a BERT-base-sized teacher on SST-2 takes most of an hour on two CPU cores, so a killed run must not
start over. After every epoch, and every `--backup_steps` steps within one, `TrainingCheckpoint` writes the
teacher with its optimizer state (`resume/teacher.weights.h5`) and, in `resume/state.json`, its dropout
layers' random states and what the epoch selection knows (epochs and steps done, best epoch and score,
history, seconds spent), under the fine-tuning's fingerprint. A fine-tuning that finds them with its own
fingerprint continues where they were written, on the batches, learning rate and dropout masks it would have
had without the interruption (epoch e's batches are shuffled from (seed, e); the ones done are skipped). An
epoch resumed midway logs the mean loss of its remaining steps only. The directory is removed once the
fine-tuning is complete.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import keras

from bilstm_kd import cache

RESUME_DIRECTORY = "resume"
_WEIGHTS = "teacher.weights.h5"
_STATE = "state.json"


def read_state(directory: str | os.PathLike, fingerprint: str) -> dict[str, Any] | None:
    """The state of an interrupted fine-tuning with this fingerprint in `directory`, or None."""
    resume = os.path.join(directory, RESUME_DIRECTORY)
    state = cache.read_json(os.path.join(resume, _STATE))
    if state is None or state.get("fingerprint") != fingerprint or not os.path.exists(os.path.join(resume, _WEIGHTS)):
        return None
    return state


def restore(teacher: keras.Model, directory: str | os.PathLike, state: dict[str, Any]) -> None:
    """Loads the checkpointed weights, optimizer and dropout seed states into a compiled `teacher` (inside its
    strategy's scope)."""
    teacher.optimizer.build(teacher.trainable_variables)
    teacher.load_weights(os.path.join(directory, RESUME_DIRECTORY, _WEIGHTS))
    variables = _seed_states(teacher)
    if len(variables) != len(state["seed_states"]):
        raise ValueError(
            f"{directory}: the resume point has {len(state['seed_states'])} dropout states, the teacher "
            f"{len(variables)}; delete {os.path.join(directory, RESUME_DIRECTORY)} to start afresh"
        )
    for variable, value in zip(variables, state["seed_states"]):  # in the model's order: their names are counters
        variable.assign(value)


def _seed_states(model: keras.Model) -> list:
    # The dropout layers' random states: not in a weights file, and without them epoch e+1 after a resume would
    # draw the dropout masks of epoch 1 again.
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def remove(directory: str | os.PathLike) -> None:
    """Removes the resume point (a finished fine-tuning, or one with other settings, needs none)."""
    shutil.rmtree(os.path.join(directory, RESUME_DIRECTORY), ignore_errors=True)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Writes the resume point after each epoch and every `every_steps` steps within one (place it after the
    callback that selects the best epoch).

    Args:
        directory: the teacher's directory.
        fingerprint: the fine-tuning's settings fingerprint; a resume point is only used by the same one.
        selection_state: returns what the epoch selection must carry over (JSON-serializable).
        seconds: returns the fine-tuning seconds so far, interrupted sittings included.
        every_steps: steps between backups within an epoch (0: at epoch ends only).
        save: False on the workers other than the chief.
    """

    def __init__(self, directory: str, fingerprint: str, selection_state, seconds, every_steps: int = 0, save=True):
        super().__init__()
        self.directory = os.path.join(directory, RESUME_DIRECTORY)
        self.fingerprint = fingerprint
        self.selection_state = selection_state
        self.seconds = seconds
        self.every_steps = every_steps
        self.save = save
        self.epoch = 0
        self.first_step = 0  # steps of the current epoch done before this `fit` (a resumed epoch)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self.first_step + batch + 1
        # Not at an epoch's last step: the epoch end writes that one, once the epoch is scored.
        if self.every_steps and step % self.every_steps == 0 and batch + 1 < self.params["steps"]:
            self._write(self.epoch, step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.first_step = 0
        self._write(epoch + 1, 0)

    def _write(self, epochs_done: int, steps_done: int) -> None:
        if not self.save:
            return
        os.makedirs(self.directory, exist_ok=True)
        weights = os.path.join(self.directory, _WEIGHTS)
        partial = weights.replace(".weights.h5", ".partial.weights.h5")
        self.model.save_weights(partial, overwrite=True)  # a compiled model's file holds its optimizer too
        os.replace(partial, weights)
        state = {
            "fingerprint": self.fingerprint,
            "epochs_done": epochs_done,
            "steps_done": steps_done,  # of epoch `epochs_done + 1`
            "seconds": self.seconds(),
            "selection": self.selection_state(),
            "seed_states": [variable.numpy().tolist() for variable in _seed_states(self.model)],
        }
        cache.write_json(os.path.join(self.directory, _STATE), state, default=float)
