"""`python -m bilstm_kd.main` as one worker of the multi-worker tests (tests/pipeline/test_multi_worker.py).

With KILL_AT=epoch,batch in the environment (0-based), the process dies (os._exit, like a lost machine)
after that batch of student distillation.
"""

import os

import keras
from absl import app

from bilstm_kd import main
from bilstm_kd.distill import training

KILLED = 17
keras.config.disable_traceback_filtering()  # full tracebacks in the workers' logs


class _DieAt(keras.callbacks.Callback):
    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os._exit(KILLED)


if os.environ.get("KILL_AT"):
    train_student = training.train_student
    killer = _DieAt(*(int(number) for number in os.environ["KILL_AT"].split(",")))

    def _train_student_then_die(*args, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), killer]
        return train_student(*args, **kwargs)

    training.train_student = _train_student_then_die  # the pipeline imports it when a stage starts

if __name__ == "__main__":
    app.run(main.main)
