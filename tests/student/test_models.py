"""The BiLSTM students: padding invariance, config and `.keras` round trips, pretrained vectors, sizes."""

import keras
import numpy as np
import pytest

from bilstm_kd.data.tasks import get_task
from bilstm_kd.student.models import BiLSTMClassifier, SiameseBiLSTMClassifier, build_student

VOCABULARY_SIZE = 12


def tiny_single(**kwargs):
    arguments = {"lstm_units": 3, "hidden_units": 5, "multichannel": True, **kwargs}
    return BiLSTMClassifier(VOCABULARY_SIZE, 4, 2, **arguments)


def tiny_pair(**kwargs):
    arguments = {"lstm_units": 3, "hidden_units": 5, "multichannel": True, **kwargs}
    return SiameseBiLSTMClassifier(VOCABULARY_SIZE, 4, 3, **arguments)


IDS = np.array([[4, 5, 6, 7, 0], [8, 9, 0, 0, 0], [3, 0, 0, 0, 0]], "int32")
IDS_B = np.array([[10, 11, 0], [4, 0, 0], [5, 6, 7]], "int32")


@pytest.mark.parametrize("make_student", [tiny_single, tiny_pair], ids=["single", "pair"])
def test_logits_do_not_depend_on_batch_padding(make_student):
    student = make_student()
    inputs = (IDS, IDS_B) if isinstance(student, SiameseBiLSTMClassifier) else IDS
    reference = student(inputs).numpy()
    padded = tuple(np.pad(ids, ((0, 0), (0, 7))) for ids in (inputs if isinstance(inputs, tuple) else (inputs,)))
    np.testing.assert_allclose(student(padded if len(padded) == 2 else padded[0]), reference, atol=1e-6)
    # Each sentence alone, trimmed to its own length, gives its row of the batch.
    for row in range(3):
        if isinstance(inputs, tuple):
            single = tuple(ids[row : row + 1, : max(1, int((ids[row] > 0).sum()))] for ids in inputs)
        else:
            single = inputs[row : row + 1, : int((inputs[row] > 0).sum())]
        np.testing.assert_allclose(student(single)[0], reference[row], atol=1e-6)


@pytest.mark.parametrize("make_student", [tiny_single, tiny_pair], ids=["single", "pair"])
def test_get_config_round_trip(make_student):
    student = make_student(dropout=0.25)
    config = student.get_config()
    assert config["lstm_units"] == 3 and config["dropout"] == 0.25 and config["multichannel"] is True
    restored = type(student).from_config(config)
    assert restored.get_config() == config
    restored.set_weights(student.get_weights())
    inputs = (IDS, IDS_B) if isinstance(student, SiameseBiLSTMClassifier) else IDS
    np.testing.assert_allclose(restored(inputs), student(inputs), atol=1e-6)


@pytest.mark.parametrize("make_student", [tiny_single, tiny_pair], ids=["single", "pair"])
def test_keras_file_round_trip(make_student, tmp_path):
    student = make_student()
    inputs = (IDS, IDS_B) if isinstance(student, SiameseBiLSTMClassifier) else IDS
    path = tmp_path / "student.keras"
    student.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(student)
    np.testing.assert_allclose(restored(inputs), student(inputs), atol=1e-6)


@pytest.mark.parametrize("make_student", [tiny_single, tiny_pair], ids=["single", "pair"])
def test_a_student_saved_with_one_lstm_kernel_loads_into_the_other(make_student, tmp_path):
    # One saved format: the file a cuDNN (GPU) run writes is read by a student on the packed loop, and back.
    student = make_student(lstm_kernel="cudnn")
    inputs = (IDS, IDS_B) if isinstance(student, SiameseBiLSTMClassifier) else IDS
    student.save_weights(tmp_path / "student.weights.h5")
    masked = make_student(lstm_kernel="masked")
    masked.load_weights(tmp_path / "student.weights.h5")
    np.testing.assert_allclose(masked(inputs), student(inputs), atol=1e-5)
    student.save(tmp_path / "student.keras")
    assert keras.saving.load_model(tmp_path / "student.keras").encoder.lstm_kernel == "cudnn"


def test_set_embedding_weights_sets_both_channels_and_freezes_one():
    student = tiny_single()
    matrix = np.arange(VOCABULARY_SIZE * 4, dtype="float32").reshape(VOCABULARY_SIZE, 4)
    student.set_embedding_weights(matrix)
    embedding = student.embedding
    np.testing.assert_array_equal(embedding.frozen_embedding.embeddings.numpy(), matrix)
    np.testing.assert_array_equal(embedding.trainable_embedding.embeddings.numpy(), matrix)
    trainable_paths = [weight.path for weight in student.trainable_weights]
    assert any("trainable_embedding" in path for path in trainable_paths)
    assert not any("frozen_embedding" in path for path in trainable_paths)
    with pytest.raises(ValueError, match=r"\(12, 4\).*\(12, 3\)"):
        student.set_embedding_weights(np.zeros((VOCABULARY_SIZE, 3)))


def test_paper_size_student_has_the_papers_parameter_count():
    student = BiLSTMClassifier(VOCABULARY_SIZE, 300, 2, lstm_units=150, hidden_units=200, multichannel=True)
    embedding_parameters = 2 * VOCABULARY_SIZE * 300
    assert student.count_params() - embedding_parameters == 961_802  # Tang et al. (2019): ~0.96M


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"lstm_units": 0}, "lstm_units=0"),
        ({"hidden_units": -2}, "hidden_units=-2"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"num_classes": 1}, "num_classes=1"),
    ],
)
def test_invalid_arguments_name_the_value(arguments, message):
    values = {"vocabulary_size": VOCABULARY_SIZE, "embedding_dim": 4, "num_classes": 2, **arguments}
    with pytest.raises(ValueError, match=message):
        BiLSTMClassifier(**values)


def test_build_student_picks_the_model_and_takes_its_sizes():
    config = {"lstm_units": 3, "hidden_units": 5, "embedding_dim": 7, "multichannel": False}
    single = build_student(get_task("sst2"), VOCABULARY_SIZE, embedding_matrix=None, **config)
    assert isinstance(single, BiLSTMClassifier) and single.embedding_dim == 7 and single.num_classes == 2
    matrix = np.random.default_rng(0).normal(size=(VOCABULARY_SIZE, 6)).astype("float32")
    pair = build_student(get_task("mnli"), VOCABULARY_SIZE, embedding_matrix=matrix, **config)
    assert isinstance(pair, SiameseBiLSTMClassifier) and pair.embedding_dim == 6 and pair.num_classes == 3
    np.testing.assert_array_equal(pair.embedding.trainable_embedding.embeddings.numpy(), matrix)
    with pytest.raises(ValueError, match=r"vocabulary_size=12"):
        build_student(get_task("sst2"), VOCABULARY_SIZE, embedding_matrix=np.zeros((5, 6)), **config)
