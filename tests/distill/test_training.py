"""Student input pipeline, train_student (fit, resume, NaN), evaluation, and distillation on SST-2."""

import csv
import json
import pathlib
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from bilstm_kd.data.tasks import get_task
from bilstm_kd.distill.batches import example_batches, transfer_batches
from bilstm_kd.distill.distiller import Distiller
from bilstm_kd.distill.evaluation import evaluate_student, predict_logits
from bilstm_kd.distill.training import TrainingDivergedError, make_optimizer, train_student
from bilstm_kd.export.saved_model import export_saved_model, saved_model_predict
from bilstm_kd.student.models import BiLSTMClassifier, SiameseBiLSTMClassifier
from bilstm_kd.student.optimizers import SparseAdadelta
from bilstm_kd.text.vocab import RESERVED, Vocabulary, WordTokenizer
from bilstm_kd.transfer.records import NO_LABEL, encode_example, parse_records

SST2_TRAIN = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "glue" / "SST-2" / "train.tsv"
WORDS = ("good", "fine", "bad", "awful", "film", "plot", "the", "a")
SENTIMENT = {"good": 1.0, "fine": 1.0, "bad": -1.0, "awful": -1.0}
VOCABULARY = Vocabulary((*RESERVED, *WORDS))


def toy_texts(count, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 9))) for _ in range(count)]


def teacher(text):
    """A fixed teacher-like function: logits from a sentiment lexicon."""
    score = sum(SENTIMENT.get(word, 0.0) for word in text.split())
    return [-score, score]


def gold(text):
    return int(teacher(text)[1] > 0)


def toy_records(texts, labelled_every=3, poison=False):
    serialized = []
    for index, text in enumerate(texts):
        label = gold(text) if index % labelled_every == 0 else NO_LABEL
        logits = [float("nan"), 0.0] if poison else teacher(text)
        serialized.append(encode_example([text], label, logits))
    return parse_records(tf.data.Dataset.from_tensor_slices(serialized), is_pair=False, num_classes=2)


def tiny_distiller(alpha=0.0):
    keras.utils.set_random_seed(0)
    student = BiLSTMClassifier(len(VOCABULARY), 8, 2, lstm_units=8, hidden_units=8)
    return Distiller(student, alpha=alpha)


def test_transfer_batches_are_bucketed_and_keep_every_example_with_its_targets():
    texts = toy_texts(60)
    tokenizer = WordTokenizer(VOCABULARY.tokens, max_length=10)
    batches = transfer_batches(toy_records(texts), tokenizer, is_pair=False, batch_size=4, shuffle=True, seed=3)
    seen = []
    for ids, targets in batches:
        lengths = (ids.numpy() > 0).sum(axis=1)
        assert ids.shape[1] == lengths.max()  # padded to its own longest sentence only
        assert len(set(lengths >= 6)) == 1  # one length bucket per batch (boundary at 6 for width 5, max 10)
        for row, length in enumerate(lengths):
            words = [VOCABULARY.tokens[i] for i in ids.numpy()[row, :length]]
            np.testing.assert_allclose(targets["teacher_logits"][row], teacher(" ".join(words)))
            seen.append(" ".join(words))
        assert set(targets) == {"teacher_logits", "label", "has_label"}
    assert sorted(seen) == sorted(texts)


def test_pair_examples_are_tokenized_per_sentence():
    texts_a, texts_b = ["good film", "bad", "the plot"], ["awful", "a good plot film", ""]
    dataset = tf.data.Dataset.from_tensor_slices(((texts_a, texts_b), [0, 1, 1]))
    tokenizer = WordTokenizer(VOCABULARY.tokens, max_length=10)
    (ids_a, ids_b), targets = next(iter(example_batches(dataset, tokenizer, is_pair=True, batch_size=3, bucket=False)))
    assert ids_a.shape == (3, 2) and ids_b.shape == (3, 4)
    assert ids_b.numpy()[2].tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(targets["label"], [0, 1, 1])


def test_train_student_reduces_the_loss_and_writes_the_run_directory(tmp_path):
    tokenizer = WordTokenizer(VOCABULARY.tokens, max_length=10)
    train = transfer_batches(toy_records(toy_texts(160)), tokenizer, is_pair=False, batch_size=8)
    dev_texts = toy_texts(40, seed=1)
    dev = example_batches(
        tf.data.Dataset.from_tensor_slices((dev_texts, [gold(text) for text in dev_texts])), tokenizer, False, 16
    )
    distiller = tiny_distiller()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_student(distiller, train, dev, tmp_path, epochs=4, patience=0, verbose=0)
    # Running out of data is how Keras counts the batches of a bucketed epoch, not a fault worth a warning.
    assert not [warning for warning in caught if "ran out of data" in str(warning.message)]
    losses = summary["history"]["loss"]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0]
    assert summary["monitor"] == "val_accuracy" and summary["best_value"] == max(summary["history"]["val_accuracy"])
    for name in ("checkpoint.weights.h5", "best.weights.h5", "training_state.json", "history.json", "student.keras"):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "logs" / "train").iterdir())
    # The student ends with its best dev weights, and evaluate_student agrees with the logged best score.
    results = evaluate_student(distiller.student, dev, get_task("sst2"))
    assert results["accuracy"] == pytest.approx(summary["best_value"], abs=1e-6)
    assert results["examples"] == 40
    saved = keras.saving.load_model(tmp_path / "student.keras")
    ids = tokenizer(tf.constant(dev_texts)).numpy()
    np.testing.assert_allclose(saved(ids), distiller.student(ids), atol=1e-6)


def test_a_run_resumes_from_its_last_finished_epoch_and_trains_on_when_epochs_grow(tmp_path):
    tokenizer = WordTokenizer(VOCABULARY.tokens, max_length=10)
    train = transfer_batches(toy_records(toy_texts(48)), tokenizer, is_pair=False, batch_size=8)
    first = tiny_distiller()
    train_student(first, train, None, tmp_path, epochs=2, patience=0, verbose=0)
    steps_after_two_epochs = int(first.optimizer.iterations)
    # Killed after epoch 2 of 3, or run with epochs=2 and now asked for 3: the same state, training goes on.
    resumed = tiny_distiller()
    summary = train_student(resumed, train, None, tmp_path, epochs=3, patience=0, verbose=0)
    assert summary["epochs_completed"] == 3 and len(summary["history"]["loss"]) == 3
    assert int(resumed.optimizer.iterations) > steps_after_two_epochs  # optimizer state came back too
    # A finished run only reloads its weights: no further step is taken.
    again = tiny_distiller()
    assert train_student(again, train, None, tmp_path, epochs=3, patience=3, verbose=0)["epochs_completed"] == 3
    assert int(again.optimizer.iterations) == int(resumed.optimizer.iterations)
    # Nor does a run out of patience when it is given more epochs: it would only stop again (here its best
    # epoch is made the first, so epochs 2 and 3 brought nothing better)...
    state_path = tmp_path / "training_state.json"
    state_path.write_text(json.dumps({**json.loads(state_path.read_text()), "best_epoch": 1}))
    stopped = tiny_distiller()
    summary = train_student(stopped, train, None, tmp_path, epochs=5, patience=2, verbose=0)
    assert summary["epochs_completed"] == 3 and summary["stopped_early"]
    assert int(stopped.optimizer.iterations) == int(resumed.optimizer.iterations)
    # ...but with a larger patience it trains on.
    patient = tiny_distiller()
    assert train_student(patient, train, None, tmp_path, epochs=5, patience=3, verbose=0)["epochs_completed"] > 3
    assert int(patient.optimizer.iterations) > int(resumed.optimizer.iterations)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    tokenizer = WordTokenizer(VOCABULARY.tokens, max_length=10)
    good = transfer_batches(toy_records(toy_texts(32)), tokenizer, is_pair=False, batch_size=8)
    distiller = tiny_distiller()
    train_student(distiller, good, None, tmp_path, epochs=1, patience=0, verbose=0)
    checkpoint = tmp_path / "checkpoint.weights.h5"
    saved_bytes = checkpoint.read_bytes()

    poisoned = transfer_batches(toy_records(toy_texts(32), poison=True), tokenizer, is_pair=False, batch_size=8)
    with pytest.raises(TrainingDivergedError, match=r"NaN.*epoch 2.*checkpoint.weights.h5.*after epoch 1"):
        train_student(tiny_distiller(), poisoned, None, tmp_path, epochs=3, patience=0, verbose=0)
    assert checkpoint.read_bytes() == saved_bytes
    assert json.loads((tmp_path / "training_state.json").read_text())["epochs_completed"] == 1


def test_predict_logits_keeps_input_order_for_both_students():
    tokenizer = WordTokenizer(VOCABULARY.tokens, max_length=10)
    texts = toy_texts(9)
    student = BiLSTMClassifier(len(VOCABULARY), 4, 2, lstm_units=3, hidden_units=4)
    batches = example_batches(tf.data.Dataset.from_tensor_slices((texts, [0] * 9)), tokenizer, False, 4, bucket=False)
    ids = tokenizer(tf.constant(texts))
    np.testing.assert_allclose(predict_logits(student, batches), student(ids), atol=1e-6)

    pair = SiameseBiLSTMClassifier(len(VOCABULARY), 4, 3, lstm_units=3, hidden_units=4)
    pairs = tf.data.Dataset.from_tensor_slices(((texts, texts[::-1]), [0] * 9))
    pair_batches = example_batches(pairs, tokenizer, True, 4, bucket=False)
    expected = pair((ids, tokenizer(tf.constant(texts[::-1]))))
    np.testing.assert_allclose(predict_logits(pair, pair_batches), expected, atol=1e-6)


def test_make_optimizer_uses_the_paper_settings():
    optimizer = make_optimizer()
    assert isinstance(optimizer, SparseAdadelta)
    assert float(optimizer.learning_rate) == 1.0 and optimizer.rho == 0.95 and optimizer.epsilon == 1e-6
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, SparseAdadelta) and restored.rho == 0.95 and restored.epsilon == 1e-6
    assert isinstance(make_optimizer("adam", learning_rate=1e-3), keras.optimizers.Adam)


@pytest.mark.skipif(not SST2_TRAIN.exists(), reason=f"SST-2 training data not found at {SST2_TRAIN}")
def test_distillation_on_sst2_sentences_trains_and_the_saved_model_classifies_raw_strings(tmp_path):
    with open(SST2_TRAIN, encoding="utf-8") as file:
        sentences = [row["sentence"] for row in csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)]
    lexicon = {"good": 1.0, "great": 1.0, "best": 1.0, "fun": 1.0, "funny": 1.0, "bad": -1.0, "worst": -1.0,
               "dull": -1.0, "boring": -1.0, "mess": -1.0}  # fmt: skip

    def lexicon_teacher(text):
        score = sum(lexicon.get(word, 0.0) for word in text.split())
        return [-2.0 * score, 2.0 * score]

    rng = np.random.default_rng(0)
    chosen = [sentences[i] for i in rng.choice(len(sentences), 3000, replace=False)]
    train_texts, dev_texts = chosen[:2600], chosen[2600:]
    vocabulary = Vocabulary.from_texts(train_texts)
    tokenizer = WordTokenizer(vocabulary.tokens, max_length=32)
    serialized = [encode_example([text], NO_LABEL, lexicon_teacher(text)) for text in train_texts]
    records = parse_records(tf.data.Dataset.from_tensor_slices(serialized), is_pair=False, num_classes=2)
    train = transfer_batches(records, tokenizer, is_pair=False, batch_size=50)
    keras.utils.set_random_seed(0)
    student = BiLSTMClassifier(len(vocabulary), 16, 2, lstm_units=16, hidden_units=16)
    summary = train_student(Distiller(student), train, None, tmp_path / "student", epochs=4, patience=0, verbose=0)
    assert summary["history"]["loss"][-1] < 0.5 * summary["history"]["loss"][0]

    path = export_saved_model(student, vocabulary, get_task("sst2"), 32, tmp_path / "saved_model")
    decided = [text for text in dev_texts if lexicon_teacher(text)[1] != 0]
    outputs = saved_model_predict(path, [*decided, "A GREAT, funny film!", "the worst , most boring mess ."])
    expected = [int(lexicon_teacher(text)[1] > 0) for text in decided]
    assert np.mean(outputs["label"][: len(decided)] == expected) > 0.8
    assert outputs["label_name"][-2:].tolist() == [b"1", b"0"]
