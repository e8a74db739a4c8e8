"""Tests of transfer-set labelling: logits in record order, cache reuse, invalidation and resumption."""

import os

import keras_hub
import numpy as np
import pytest
from conftest import tiny_bert_backbone

from bilstm_kd.data.tasks import get_task
from bilstm_kd.teacher.inference import teacher_logits
from bilstm_kd.teacher.lite import LiteTeacher
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.transfer import labelling, records
from bilstm_kd.transfer.labelling import label_transfer_set
from bilstm_kd.transfer.shards import ShardedRecords

VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "film", "movie", "good", "bad", "very", "was", "not",
]  # fmt: skip
SENTENCES = [
    "a good film", "the movie was bad", "very very good", "a [MASK] film", "not good", "bad",
    "the film was not very good", "a movie", "good good good good", "the [MASK]",
]  # fmt: skip


def tiny_teacher(num_classes=2, seed=0):
    tokenizer = keras_hub.models.BertTokenizer(VOCABULARY, lowercase=True, special_tokens_in_strings=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=12)
    backbone = tiny_bert_backbone(len(VOCABULARY), max_sequence_length=12, seed=seed)
    return BertTeacher(backbone, preprocessor, num_classes=num_classes, pooling="mean")


def write_source(directory, texts, labels, num_shards=3, seed=0):
    """An augmented transfer set as the augment stage writes it: records spread over shards."""
    store = ShardedRecords(directory, {"seed": seed, "size": len(labels)}, num_shards=num_shards)
    rows = list(range(len(labels)))
    for index in range(num_shards):
        store.write_shard(
            index,
            (records.encode_example([column[row] for column in texts], labels[row]) for row in rows[index::num_shards]),
        )
    store.finish({"examples": len(labels)})
    return store


def read_labelled(store, task):
    parsed = records.parse_records(store.dataset(), task.is_pair, task.num_classes).batch(1000)
    batch = next(iter(parsed.as_numpy_iterator()))
    texts = [[text.decode() for text in batch["text_a"]]]
    if task.is_pair:
        texts.append([text.decode() for text in batch["text_b"]])
    return texts, batch["label"], batch["has_label"], batch["teacher_logits"]


def single_sentence_source(directory, seed=0):
    labels = [1, 0, 1, records.NO_LABEL, 0, 0, records.NO_LABEL, 1, 1, records.NO_LABEL]
    return write_source(directory, (SENTENCES,), labels, seed=seed)


def test_labels_every_record_in_order(tmp_path):
    task = get_task("sst2")
    teacher = tiny_teacher()
    source = single_sentence_source(str(tmp_path / "augmented"))
    store = label_transfer_set(
        teacher, source, str(tmp_path / "labelled"), task, batch_size=3, teacher_fingerprint="t1"
    )
    assert store.is_complete() and store.num_shards == source.num_shards
    assert store.manifest["statistics"]["examples"] == len(SENTENCES)

    (texts,), labels, has_label, logits = read_labelled(store, task)
    source_records = records.parse_records(source.dataset(), False).batch(1000)
    expected = next(iter(source_records.as_numpy_iterator()))
    assert texts == [text.decode() for text in expected["text_a"]]
    np.testing.assert_array_equal(labels, expected["label"])
    np.testing.assert_array_equal(has_label, expected["label"] != records.NO_LABEL)
    np.testing.assert_allclose(logits, teacher_logits(teacher, texts, batch_size=1), atol=1e-5)


def test_sentence_pairs_are_labelled_as_pairs(tmp_path):
    task = get_task("mnli")
    teacher = tiny_teacher(num_classes=3)
    second = list(reversed(SENTENCES))
    source = write_source(str(tmp_path / "augmented"), (SENTENCES, second), [0, 1, 2] * 3 + [records.NO_LABEL])
    store = label_transfer_set(teacher, source, str(tmp_path / "labelled"), task, batch_size=4, teacher_fingerprint="t")
    (first, second_read), _, _, logits = read_labelled(store, task)
    assert logits.shape == (len(SENTENCES), 3)
    np.testing.assert_allclose(logits, teacher_logits(teacher, first, second_read, batch_size=1), atol=1e-5)
    # The pair matters: the same first sentences alone give other logits.
    assert not np.allclose(logits, teacher_logits(teacher, first, [""] * len(first)), atol=1e-4)


class CountingLogits:
    """Wraps `labelling.encoded_logits` to count the shards it labels."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = labelling.encoded_logits

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(labelling, "encoded_logits", counted)


def test_cache_is_reused_and_rebuilt_when_teacher_or_data_change(tmp_path, monkeypatch):
    task = get_task("sst2")
    teacher = tiny_teacher()
    source = single_sentence_source(str(tmp_path / "augmented"))
    directory = str(tmp_path / "labelled")
    label_transfer_set(teacher, source, directory, task, teacher_fingerprint="teacher-1", verbose=0)
    counter = CountingLogits(monkeypatch)

    label_transfer_set(teacher, source, directory, task, teacher_fingerprint="teacher-1", verbose=0)
    assert counter.calls == 0

    other_teacher = tiny_teacher(seed=5)
    store = label_transfer_set(other_teacher, source, directory, task, teacher_fingerprint="teacher-2", verbose=0)
    assert counter.calls == source.num_shards
    (texts,), _, _, logits = read_labelled(store, task)
    np.testing.assert_allclose(logits, teacher_logits(other_teacher, texts), atol=1e-5)

    changed = single_sentence_source(str(tmp_path / "augmented-2"), seed=1)
    assert changed.fingerprint != source.fingerprint
    label_transfer_set(other_teacher, changed, directory, task, teacher_fingerprint="teacher-2", verbose=0)
    assert counter.calls == 2 * source.num_shards


def test_a_lite_teacher_labels_and_the_teacher_relabels_its_doubtful_examples(tmp_path):
    task = get_task("sst2")
    teacher = tiny_teacher()
    source = single_sentence_source(str(tmp_path / "augmented"))
    directory = str(tmp_path / "labelled")
    plain = label_transfer_set(teacher, source, directory, task, teacher_fingerprint="t1", verbose=0)
    (texts,), _, _, float_logits = read_labelled(plain, task)

    class HalvedLite(LiteTeacher):  # a stand-in whose logits differ visibly from the float teacher's
        def logits(self, batch):
            return super().logits(batch) * 0.5

    lite = HalvedLite(teacher)
    margin = float(np.median(np.abs(float_logits[:, 0] - float_logits[:, 1]) * 0.5))
    store = label_transfer_set(
        teacher, source, directory, task, teacher_fingerprint="t1", verbose=0, lite=lite, check_margin=margin
    )
    assert store.fingerprint != plain.fingerprint  # int8 labels are a store of their own
    (lite_texts,), _, _, logits = read_labelled(store, task)
    assert lite_texts == texts
    halved = float_logits * 0.5
    doubtful = np.abs(halved[:, 0] - halved[:, 1]) < margin
    assert 0 < doubtful.sum() < len(texts)
    np.testing.assert_allclose(logits[doubtful], float_logits[doubtful], atol=1e-5)
    np.testing.assert_allclose(logits[~doubtful], halved[~doubtful], atol=1e-5)
    assert store.manifest["statistics"]["relabelled_by_teacher_in_this_run"] == doubtful.sum()

    other = label_transfer_set(
        teacher, source, directory, task, teacher_fingerprint="t1", verbose=0, lite=lite, check_margin=2 * margin
    )
    assert other.fingerprint != store.fingerprint  # the margin decides which logits are the teacher's


def test_half_written_cache_is_completed_not_trusted(tmp_path, monkeypatch):
    task = get_task("sst2")
    teacher = tiny_teacher()
    source = single_sentence_source(str(tmp_path / "augmented"))
    directory = str(tmp_path / "labelled")
    complete = label_transfer_set(teacher, source, directory, task, teacher_fingerprint="t", verbose=0)
    before = read_labelled(complete, task)

    # A run killed while writing shard 1: the shard is missing and its temporary file is half written.
    os.remove(complete.shard_path(1))
    with open(complete.shard_path(1) + ".tmp", "wb") as file:
        file.write(b"\x00garbage")
    assert not ShardedRecords(directory, complete.fingerprint_values, complete.num_shards).is_complete()

    counter = CountingLogits(monkeypatch)
    resumed = label_transfer_set(teacher, source, directory, task, teacher_fingerprint="t", verbose=0)
    assert counter.calls == 1  # only the missing shard
    after = read_labelled(resumed, task)
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[3], before[3], atol=1e-6)
    assert resumed.manifest["statistics"]["examples"] == len(SENTENCES)


def test_invalid_inputs_are_explained(tmp_path):
    task = get_task("sst2")
    source = single_sentence_source(str(tmp_path / "augmented"))
    with pytest.raises(ValueError, match="teacher_fingerprint=''"):
        label_transfer_set(tiny_teacher(), source, str(tmp_path / "labelled"), task, teacher_fingerprint="")
    with pytest.raises(ValueError, match=r"3 classes.*'sst2' has 2"):
        label_transfer_set(
            tiny_teacher(num_classes=3), source, str(tmp_path / "labelled"), task, teacher_fingerprint="t"
        )
    os.remove(source.shard_path(0))
    with pytest.raises(RuntimeError, match=r"incomplete.*augment"):
        label_transfer_set(tiny_teacher(), source, str(tmp_path / "labelled"), task, teacher_fingerprint="t")
