"""The time estimate said once a training's first batches have run."""

import keras
import numpy as np
import pytest

from bilstm_kd.progress import TimeEstimate, duration


@pytest.mark.parametrize(("seconds", "said"), [(40.2, "40 s"), (210, "3.5 min"), (4320, "72.0 min"), (9000, "2.5 h")])
def test_durations_read_as_a_person_says_them(seconds, said):
    assert duration(seconds) == said


def test_the_estimate_comes_once_from_the_measured_batches():
    said, readings = [], iter([100.0, 104.0])  # 2 measured batches in 4 s: 2 s a batch
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    estimate = TimeEstimate(
        "teacher", 3, steps_per_epoch=30, log=said.append, skip=1, measure=2, clock=lambda: next(readings)
    )
    x, y = np.zeros((10, 2)), np.zeros((10, 1))
    model.fit(x, y, batch_size=1, epochs=3, callbacks=[estimate], verbose=0)
    assert said == ["[teacher] about 60 s an epoch (30 batches): at most 3.0 min for 3 epochs"]


def test_a_resumed_training_counts_the_epochs_left():
    said, readings = [], iter([0.0, 1.0])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    estimate = TimeEstimate("distill", 5, log=said.append, skip=0, measure=1, clock=lambda: next(readings))
    model.fit(
        np.zeros((4, 2)), np.zeros((4, 1)), batch_size=1, epochs=5, initial_epoch=4, callbacks=[estimate], verbose=0
    )
    assert said == ["[distill] about 4 s an epoch (4 batches): at most 4 s for 1 epoch"]
