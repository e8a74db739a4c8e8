"""tf.distribute: two replicas give the one-device result, and labelling splits across replicas and workers."""

import functools
import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from conftest import LOGICAL_CPUS, Examples, tiny_bert_backbone

from bilstm_kd.config import ConfigError, DistributeConfig
from bilstm_kd.data.tasks import get_task
from bilstm_kd.distill.distiller import Distiller
from bilstm_kd.distill.training import make_optimizer
from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.student.models import BiLSTMClassifier
from bilstm_kd.teacher import fine_tuning
from bilstm_kd.teacher.fine_tuning import FineTuning, fine_tune_teacher
from bilstm_kd.teacher.inference import encode_texts, encoded_logits
from bilstm_kd.teacher.loading import load_teacher

RELATIVE_TOLERANCE = 1e-5


@functools.cache
def mirrored():
    # One for the whole process: separate MirroredStrategy objects would reuse collective instance keys.
    strategy = distribute.make_strategy("mirrored", ",".join(LOGICAL_CPUS))
    assert strategy.num_replicas_in_sync == 2
    return strategy


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def assert_close(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=RELATIVE_TOLERANCE, atol=1e-7)


def distillation_data(examples=23, batch_size=8):
    """Padded ids with teacher logits and some gold labels; 23 examples in batches of 8 end with 7 (uneven)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, examples)
    ids = np.zeros((examples, 8), "int32")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(3, 30, length)
    labels = rng.integers(0, 2, examples).astype("int32")
    labels[::3] = -1  # augmented examples: no gold label
    targets = {
        "teacher_logits": rng.normal(size=(examples, 2)).astype("float32"),
        "label": labels,
        "has_label": (labels >= 0).astype("int32"),
    }
    return tf.data.Dataset.from_tensor_slices((ids, targets)).batch(batch_size)


def train_distiller(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        student = BiLSTMClassifier(vocabulary_size=30, embedding_dim=6, num_classes=2, lstm_units=4, hidden_units=5)
        distiller = Distiller(student, alpha=0.5)
        distiller.compile(optimizer=make_optimizer())  # SparseAdadelta
    recorder = StepLosses()
    distiller.fit(distillation_data(), epochs=2, callbacks=[recorder], verbose=0, shuffle=False)
    return recorder.losses, [weight.numpy() for weight in student.weights]


def test_mirrored_distiller_matches_one_device_step_for_step():
    one_losses, one_weights = train_distiller(distribute.make_strategy("one_device", LOGICAL_CPUS[0]))
    two_losses, two_weights = train_distiller(mirrored())
    assert len(one_losses) == 6  # 3 batches (8, 8, 7) x 2 epochs
    assert_close(two_losses, one_losses)
    assert_close(two_weights, one_weights)
    assert not np.allclose(one_losses[0], one_losses[-1])  # it trained


VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "very", "movie", "not"]


def sentiment(count):
    rng = np.random.default_rng(1)
    texts, labels = [], []
    for _ in range(count):
        label = int(rng.integers(0, 2))
        words = ["a", "very" if rng.random() < 0.5 else "not", "good" if label else "bad", "film"]
        texts.append(" ".join([*words[: int(rng.integers(2, 5))], "good" if label else "bad"]))
        labels.append(label)
    return Examples(texts, labels=labels)


@pytest.fixture(scope="module")
def dropout_free_preset(tmp_path_factory):
    """A tiny BERT without dropout: replicas draw different dropout masks than one device would."""
    preset = tmp_path_factory.mktemp("bert")
    backbone = tiny_bert_backbone(len(VOCABULARY), seed=3, dropout=0.0)
    backbone.save_to_preset(str(preset))
    keras_hub.models.BertTokenizer(VOCABULARY, lowercase=True).save_to_preset(str(preset))
    return str(preset)


def fine_tune(preset, directory, strategy, monkeypatch):
    def without_head_dropout(*args, **kwargs):
        teacher = load_teacher(*args, **kwargs)
        teacher.get_layer("classifier_dropout").rate = 0.0
        return teacher

    monkeypatch.setattr(fine_tuning, "load_teacher", without_head_dropout)
    config = FineTuning(teacher=preset, epochs=2, batch_size=8, max_length=16)
    recorder = StepLosses()
    # 21 examples in batches of 8: every epoch ends with an uneven batch of 5.
    teacher, _ = fine_tune_teacher(
        config, get_task("sst2"), sentiment(21), sentiment(8), directory, verbose=0, strategy=strategy,
        callbacks=[recorder],
    )  # fmt: skip
    return recorder.losses, [weight.numpy() for weight in teacher.weights]


def test_mirrored_teacher_fine_tuning_matches_one_device(dropout_free_preset, tmp_path, monkeypatch):
    one_losses, one_weights = fine_tune(
        dropout_free_preset, tmp_path / "one", distribute.make_strategy("one_device", LOGICAL_CPUS[0]), monkeypatch
    )
    two_losses, two_weights = fine_tune(dropout_free_preset, tmp_path / "two", mirrored(), monkeypatch)
    assert len(one_losses) == 6  # 3 steps x 2 epochs
    assert_close(two_losses, one_losses)
    assert_close(two_weights, one_weights)


def test_mirrored_labelling_matches_one_device(dropout_free_preset):
    keras.utils.set_random_seed(0)
    teacher = load_teacher(dropout_free_preset, num_classes=2, max_length=16)
    strategy = mirrored()
    with strategy.scope():
        twin = load_teacher(dropout_free_preset, num_classes=2, max_length=16)
    twin.set_weights(teacher.get_weights())
    encoded = encode_texts(teacher.preprocessor, sentiment(37).texts[0])
    expected = encoded_logits(teacher, encoded, batch_size=8)
    actual = encoded_logits(twin, encoded, batch_size=8, strategy=strategy)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_strategy_flags_are_checked():
    with pytest.raises(ConfigError, match="--tpu"):
        DistributeConfig(strategy="mirrored", tpu="grpc://10.0.0.2:8470")
    with pytest.raises(ConfigError, match="--devices"):
        DistributeConfig(strategy="default", devices="/gpu:0")
    with pytest.raises(ConfigError, match="--backup_steps"):
        DistributeConfig(backup_steps=-1)


def test_multi_worker_without_tf_config_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")


def test_single_process_is_its_own_chief():
    strategy = distribute.make_strategy("default")
    assert distribute.is_chief(strategy)
    assert (distribute.worker_index(strategy), distribute.worker_count(strategy)) == (0, 1)
    distribute.barrier(strategy)  # a no-op with one worker
    assert json.loads(json.dumps(distribute.describe(strategy)))["workers"] == 1
