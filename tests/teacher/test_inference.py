"""Encoding text for the teacher and its logits: masks, pairs, truncation, length-bucketed batches."""

import numpy as np
import pytest
from conftest import MAX_LENGTH, VOCABULARY, Examples, shared_teacher

from bilstm_kd.data.tasks import get_task
from bilstm_kd.teacher import inference
from bilstm_kd.teacher.inference import encode_texts, evaluate_teacher, length_sorted_batches, teacher_logits


def test_mask_reaches_the_teacher_as_the_mask_token():
    teacher = shared_teacher()
    encoded = encode_texts(teacher.preprocessor, ["a [MASK] film", "a [mask] film .", "[Mask]"])
    mask_id = teacher.preprocessor.tokenizer.mask_token_id
    rows = [encoded.batch(np.array([index]))["token_ids"][0].tolist() for index in range(3)]
    cls, sep = VOCABULARY.index("[CLS]"), VOCABULARY.index("[SEP]")
    a, film, period = VOCABULARY.index("a"), VOCABULARY.index("film"), VOCABULARY.index(".")
    assert rows[0] == [cls, a, mask_id, film, sep]
    assert rows[1] == [cls, a, mask_id, film, period, sep]
    assert rows[2] == [cls, mask_id, sep]
    for piece in ("[", "]", "mask"):
        assert VOCABULARY.index(piece) not in encoded.token_ids


def test_sentence_pairs_use_two_segments():
    teacher = shared_teacher(num_classes=3)
    encoded = encode_texts(teacher.preprocessor, ["a good film", "the movie"], ["very bad", "good"])
    batch = encoded.batch(np.array([0, 1]))
    cls, sep = VOCABULARY.index("[CLS]"), VOCABULARY.index("[SEP]")
    assert batch["token_ids"][0].tolist() == [cls, 8, 12, 10, sep, 16, 13, sep]
    assert batch["segment_ids"][0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert batch["token_ids"][1].tolist() == [cls, 9, 11, sep, 12, sep, 0, 0]
    assert batch["padding_mask"][1].tolist() == [True] * 6 + [False] * 2
    assert teacher_logits(teacher, ["a good film", "the movie"], ["very bad", "good"]).shape == (2, 3)


def test_long_pairs_are_truncated_to_the_teacher_length():
    teacher = shared_teacher(num_classes=3)
    long = " ".join(["good"] * 30)
    encoded = encode_texts(teacher.preprocessor, [long], [long])
    assert encoded.lengths.tolist() == [MAX_LENGTH]
    assert encoded.batch(np.array([0]))["segment_ids"][0].sum() == (MAX_LENGTH - 3) // 2 + 1  # b's pieces + [SEP]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_length_bucketed_logits_are_in_input_order(pooling):
    teacher = shared_teacher(pooling=pooling)
    texts = ["a very very very good film !", "bad", "the movie was not great", "a film", "awful"]
    batched = teacher_logits(teacher, texts, batch_size=2)
    one_by_one = np.concatenate([teacher_logits(teacher, [text], batch_size=1) for text in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=2e-6)
    # A random tiny BERT's [CLS] vector barely depends on the other tokens, yet far more than the tolerance.
    assert np.abs(batched[0] - batched[1]).max() > 5e-5  # different inputs give different logits
    assert teacher_logits(teacher, [], batch_size=2).shape == (0, 2)


def test_pair_logits_are_in_input_order():
    teacher = shared_teacher(num_classes=3)
    first = ["a good film", "bad", "the movie was very very good"]
    second = ["awful", "the film was not bad at all", "good"]
    batched = teacher_logits(teacher, first, second, batch_size=2)
    one_by_one = np.concatenate([teacher_logits(teacher, [a], [b]) for a, b in zip(first, second)])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_inference_batches_respect_the_example_and_word_piece_limits():
    lengths = np.random.default_rng(0).integers(2, 40, size=500)
    lengths[7] = 100  # longer than the budget: a batch of its own
    batches = length_sorted_batches(lengths, batch_size=32, max_tokens=256)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for batch in batches:
        assert len(batch) <= 32
        assert len(batch) * lengths[batch].max() <= 256 or len(batch) == 1
    assert [7] in [batch.tolist() for batch in batches]
    assert [len(batch) for batch in length_sorted_batches(lengths, batch_size=200)] == [200, 200, 100]


def test_evaluate_teacher_uses_the_task_metrics(monkeypatch):
    teacher = shared_teacher()
    examples = Examples(["a", "b", "c", "d"], labels=[1, 0, 1, 1])
    monkeypatch.setattr(inference, "teacher_logits", lambda *args, **kwargs: np.array([[0, 1], [0, 1], [1, 0], [0, 1]]))
    metrics = evaluate_teacher(teacher, examples, get_task("mrpc"), batch_size=2)
    assert metrics == pytest.approx({"f1": 2 * 2 / (3 + 3), "accuracy": 0.5})
