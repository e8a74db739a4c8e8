"""Sharded record stores: resume, invalidation on a changed fingerprint, half-written shards never trusted."""

import os

import numpy as np
import pytest
import tensorflow as tf

from bilstm_kd.cache import fingerprint
from bilstm_kd.transfer.records import NO_LABEL, encode_example, parse_records
from bilstm_kd.transfer.shards import ShardedRecords


def records(shard, count=3):
    return [f"shard {shard} record {index}".encode() for index in range(count)]


def test_write_finish_and_read_in_shard_order(tmp_path):
    store = ShardedRecords(tmp_path / "store", {"seed": 0}, num_shards=3)
    assert store.missing_shards() == [0, 1, 2] and not store.is_complete()
    for index in store.missing_shards():
        store.write_shard(index, records(index))
    store.finish({"examples": 9})
    assert store.is_complete()
    assert [record.numpy() for record in store.dataset()] == records(0) + records(1) + records(2)
    assert store.manifest["statistics"] == {"examples": 9}


def test_resume_keeps_finished_shards_and_ignores_half_written_ones(tmp_path):
    store = ShardedRecords(tmp_path / "store", {"seed": 0}, num_shards=3)
    store.write_shard(0, records(0))
    with open(store.shard_path(1) + ".tmp", "wb") as file:  # a kill in the middle of shard 1
        file.write(b"half")
    finished_at = os.path.getmtime(store.shard_path(0))

    resumed = ShardedRecords(tmp_path / "store", {"seed": 0}, num_shards=3)
    assert resumed.missing_shards() == [1, 2]
    assert os.path.getmtime(resumed.shard_path(0)) == finished_at
    with pytest.raises(RuntimeError, match=r"shards \[1, 2\] missing"):
        resumed.finish()
    with pytest.raises(RuntimeError, match="incomplete"):
        resumed.dataset()


def test_changed_fingerprint_or_shard_count_starts_over(tmp_path):
    store = ShardedRecords(tmp_path / "store", {"seed": 0}, num_shards=2)
    for index in range(2):
        store.write_shard(index, records(index))
    store.finish()
    assert ShardedRecords(tmp_path / "store", {"seed": 0}, num_shards=2).is_complete()
    assert ShardedRecords(tmp_path / "store", {"seed": 1}, num_shards=2).missing_shards() == [0, 1]
    store = ShardedRecords(tmp_path / "store", {"seed": 1}, num_shards=2)
    store.write_shard(0, records(0))
    assert ShardedRecords(tmp_path / "store", {"seed": 1}, num_shards=4).missing_shards() == [0, 1, 2, 3]


def test_fingerprint_is_stable_and_order_independent():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_record_format_round_trip():
    serialized = [
        encode_example(("a good film", "a fine film"), 1, teacher_logits=[0.5, -1.5]),
        encode_example(("[MASK] film", "a fine film"), NO_LABEL, teacher_logits=[2.0, 0.0]),
    ]
    parsed = list(parse_records(tf.data.Dataset.from_tensor_slices(serialized), is_pair=True, num_classes=2))
    assert parsed[0]["text_b"].numpy() == b"a fine film"
    assert [int(example["label"]) for example in parsed] == [1, NO_LABEL]
    assert [int(example["has_label"]) for example in parsed] == [1, 0]
    np.testing.assert_allclose(parsed[1]["teacher_logits"], [2.0, 0.0])
    single = encode_example(("just one",), 0)
    (example,) = parse_records(tf.data.Dataset.from_tensors(single), is_pair=False)
    assert example["text_a"].numpy() == b"just one" and "teacher_logits" not in example


def test_open_existing_reads_without_clearing(tmp_path):
    store = ShardedRecords(tmp_path / "store", {"seed": 0}, num_shards=2)
    for index in range(2):
        store.write_shard(index, records(index))
    store.finish({"examples": 6})
    opened = ShardedRecords.open_existing(tmp_path / "store")
    assert opened.fingerprint == store.fingerprint and opened.is_complete()
    assert len(list(opened.dataset())) == 6
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        ShardedRecords.open_existing(tmp_path / "nothing")
