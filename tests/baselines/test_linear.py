"""TF-IDF + logistic regression: the cheap baseline every report sets beside the student."""

import numpy as np
import pytest

from bilstm_kd.baselines import linear

POSITIVE = ["a good film", "great fun", "good and great", "a great plot", "truly good"]
NEGATIVE = ["a bad film", "awful plot", "bad and dull", "dull, awful", "truly bad"]


def columns(texts):
    return (np.array(texts, dtype=object),)


def test_it_learns_words_and_word_pieces():
    texts, labels = POSITIVE + NEGATIVE, np.array([1] * 5 + [0] * 5)
    model, seconds = linear.fit(columns(texts), labels)
    assert seconds >= 0
    # "goodness" shares character n-grams with "good", "badly" with "bad": the char_wb features generalise.
    np.testing.assert_array_equal(linear.predict(model, columns(["goodness", "badly", "great"])), [1, 0, 1])
    assert linear.predict(model, columns([])).shape == (0,)


def test_a_pair_gets_the_features_of_both_texts():
    first = np.array(["same words", "same words", "one thing", "one thing"], dtype=object)
    second = np.array(["same words", "other stuff", "one thing", "different"], dtype=object)
    labels = np.array([1, 0, 1, 0])
    model, _ = linear.fit((first, second), labels)
    features = model.named_steps["features"].transform(linear.text_matrix((first, second)))
    assert features.shape[0] == 4 and features.shape[1] > 2 * 10
    assert len(model.named_steps["features"].transformers_) == 2


def test_throughput_has_the_report_keys():
    model, _ = linear.fit(columns(POSITIVE + NEGATIVE), np.array([1] * 5 + [0] * 5))
    rates = linear.throughput(model, columns(POSITIVE * 3), one_at_a_time=4)
    assert set(rates) == {"batch_512", "batch_1"} and all(rate > 0 for rate in rates.values())


def test_columns_must_be_one_or_two():
    with pytest.raises(ValueError, match="columns=3"):
        linear.linear_classifier(3)
