"""The transfer-set store: originals with labels, deduplicated augmentations, statistics, resume, seeds."""

import collections
import csv
import dataclasses
import importlib.util
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from conftest import GLUE_DIR, requires_glue

from bilstm_kd.text import pos
from bilstm_kd.transfer import build as transfer
from bilstm_kd.transfer import records
from bilstm_kd.transfer.augment import Augmentation
from bilstm_kd.transfer.shards import ShardedRecords

SENTENCES = [
    "a good film",
    "bad acting , worse script",
    "it 's a charming and often affecting journey",
    "the plot is thin",
    "the plot is thin",  # a duplicate original stays: originals are the training set as given
    "one of the year 's best",
    "dull",
    "",
    "never boring , always surprising",
    "i did n't like it",
    "an honest , funny movie about friendship",
    "too long by half",
]
LABELS = [1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0]
CONFIG = Augmentation(n_iter=6, p_mask=0.2, p_pos=0.0, p_ng=0.3)
SHARDS = 3


def build(seed, directory, split=None):
    """The transfer set of `split` (default `single_split()`) with the tests' settings."""
    split = single_split() if split is None else split
    return transfer.build_transfer_set(split, "sst2", CONFIG, seed, directory, SHARDS)


def single_split(sentences=SENTENCES, labels=LABELS):
    return types.SimpleNamespace(texts=(np.array(sentences, dtype=object),), labels=np.array(labels, dtype=np.int32))


def read_store(store, is_pair=False):
    rows = []
    for record in records.parse_records(store.dataset(), is_pair).as_numpy_iterator():
        texts = (record["text_a"].decode(),) + ((record["text_b"].decode(),) if is_pair else ())
        rows.append((texts, int(record["label"]), int(record["has_label"])))
    return rows


def shard_bytes(store):
    return [open(path, "rb").read() for path in store.paths()]


def test_originals_keep_labels_and_augmentations_are_unlabelled(tmp_path):
    store = build(0, tmp_path / "t")
    rows = read_store(store)
    originals = [(texts[0], label) for texts, label, has_label in rows if has_label]
    assert originals == list(zip(SENTENCES, LABELS))  # in order, shard by shard
    augmented = [texts[0] for texts, label, has_label in rows if not has_label]
    assert augmented and all(label == records.NO_LABEL for _, label, has_label in rows if not has_label)
    # No duplicates, and no augmentation equals an original (compared in the student's token form).
    assert len(set(augmented)) == len(augmented)
    normalized_originals = {" ".join(tokens) for tokens in pos.tokenize_texts(SENTENCES)}
    assert not set(augmented) & normalized_originals
    assert any("[MASK]" in text for text in augmented)


def test_statistics_add_up(tmp_path):
    store = build(0, tmp_path / "t")
    statistics = store.manifest["statistics"]
    rows = read_store(store)
    assert statistics["originals"] == len(SENTENCES)
    assert statistics["generated"] == len(SENTENCES) * CONFIG.n_iter
    assert statistics["augmented"] + statistics["dropped"] == statistics["generated"]
    assert statistics["dropped"] == statistics["dropped_unchanged"] + statistics["dropped_duplicates"]
    assert statistics["dropped_unchanged"] >= CONFIG.n_iter  # the empty sentence never changes
    assert statistics["examples"] == len(rows) == statistics["originals"] + statistics["augmented"]
    assert statistics["seconds"] > 0


def test_n_iter_zero_holds_the_originals_only(tmp_path):
    config = Augmentation(n_iter=0, pos_model="no_such_spacy_pipeline")  # no tagging
    store = transfer.build_transfer_set(single_split(), "sst2", config, seed=0, directory=tmp_path / "t", num_shards=2)
    rows = read_store(store)
    assert [(texts[0], label, has_label) for texts, label, has_label in rows] == [
        (text, label, 1) for text, label in zip(SENTENCES, LABELS)
    ]


def test_same_seed_same_transfer_set_other_seed_other_set(tmp_path):
    first = build(5, tmp_path / "a")
    again = build(5, tmp_path / "b")
    other = build(6, tmp_path / "c")
    assert shard_bytes(first) == shard_bytes(again)
    assert {row[0] for row in read_store(first)} != {row[0] for row in read_store(other)}


def test_another_process_builds_the_same_transfer_set(tmp_path):
    here = build(3, tmp_path / "here")
    script = (
        "import sys, types, numpy as np\n"
        "from bilstm_kd.transfer import build as transfer\n"
        "from bilstm_kd.transfer.augment import Augmentation\n"
        f"split = types.SimpleNamespace(texts=(np.array({SENTENCES!r}, dtype=object),), labels=np.array({LABELS!r}))\n"
        f"transfer.build_transfer_set(split, 'sst2', Augmentation(**{CONFIG.__dict__!r}), 3, sys.argv[1], {SHARDS})\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different string hashing than this process
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "there")], check=True, env=environment, timeout=120)
    there = ShardedRecords(tmp_path / "there", here.fingerprint_values, here.num_shards)
    assert there.is_complete()
    assert read_store(there) == read_store(here)


def test_the_set_of_texts_does_not_depend_on_the_number_of_shards(tmp_path):
    texts_one = collections.Counter(
        row[0] for row in read_store(transfer.build_transfer_set(single_split(), "sst2", CONFIG, 0, tmp_path / "1", 1))
    )
    texts_five = collections.Counter(
        row[0] for row in read_store(transfer.build_transfer_set(single_split(), "sst2", CONFIG, 0, tmp_path / "5", 5))
    )
    assert texts_one == texts_five


def test_a_killed_run_resumes_without_redoing_finished_shards(tmp_path, monkeypatch):
    reference = build(0, tmp_path / "reference")
    original_write_shard = ShardedRecords.write_shard

    def write_until_shard_two(self, index, shard_records):
        if index == 2:
            raise KeyboardInterrupt("killed")
        return original_write_shard(self, index, shard_records)

    monkeypatch.setattr(ShardedRecords, "write_shard", write_until_shard_two)
    with pytest.raises(KeyboardInterrupt):
        build(0, tmp_path / "resumed")
    monkeypatch.setattr(ShardedRecords, "write_shard", original_write_shard)

    generated_ranges = []
    original_generate = transfer._generate_shard

    def recording_generate(augmentation, columns, labels, start, end, seen, batch_size):
        generated_ranges.append((start, end))
        return original_generate(augmentation, columns, labels, start, end, seen, batch_size)

    monkeypatch.setattr(transfer, "_generate_shard", recording_generate)
    resumed = build(0, tmp_path / "resumed")
    assert generated_ranges == [(8, 12)]  # only the last of the three shards
    assert shard_bytes(resumed) == shard_bytes(reference)
    resumed_statistics, reference_statistics = resumed.manifest["statistics"], reference.manifest["statistics"]
    assert {key: value for key, value in resumed_statistics.items() if key != "seconds"} == {
        key: value for key, value in reference_statistics.items() if key != "seconds"
    }

    generated_ranges.clear()
    build(0, tmp_path / "resumed")
    assert generated_ranges == []  # complete: reused as is
    changed = dataclasses.replace(CONFIG, p_mask=0.3)
    transfer.build_transfer_set(single_split(), "sst2", changed, 0, tmp_path / "resumed", SHARDS)
    assert len(generated_ranges) == 3  # a changed setting rebuilds everything


def test_sentence_pairs_cycle_through_the_three_modes(tmp_path):
    firsts, seconds, labels = ["a b", "c d", "e f g", "h i"], ["x", "y z", "w", "v"], [0, 1, 1, 0]
    split = types.SimpleNamespace(
        texts=(np.array(firsts, dtype=object), np.array(seconds, dtype=object)), labels=np.array(labels)
    )
    config = Augmentation(n_iter=3, p_mask=1.0, p_pos=0.0, p_ng=0.0)
    store = transfer.build_transfer_set(split, "mrpc", config, seed=0, directory=tmp_path / "pairs", num_shards=2)
    rows = read_store(store, is_pair=True)
    assert [(texts, label) for texts, label, has_label in rows if has_label] == [
        ((first, second), label) for first, second, label in zip(firsts, seconds, labels)
    ]

    def masked(text):
        return " ".join(["[MASK]"] * len(text.split()))

    expected = []
    for first, second in zip(firsts, seconds):  # round 0: first only, round 1: second only, round 2: both
        expected += [(masked(first), second), (first, masked(second)), (masked(first), masked(second))]
    expected_unique = set(expected)
    assert len(expected_unique) == len(expected) - 1  # "h i"/"v" fully masked repeats "a b"/"x" fully masked
    augmented = [texts for texts, _, has_label in rows if not has_label]
    assert sorted(augmented) == sorted(expected_unique)


def test_inputs_that_do_not_fit_the_task_are_refused(tmp_path):
    pair = types.SimpleNamespace(texts=(np.array(["a"]), np.array(["b"])), labels=np.array([0]))
    with pytest.raises(ValueError, match="Task 'sst2' has 1 text column"):
        transfer.build_transfer_set(pair, "sst2", CONFIG, 0, tmp_path / "t", num_shards=SHARDS)
    with pytest.raises(ValueError, match=r"class ids in \[0, 2\).*from 0 to 2"):
        build(0, tmp_path / "t", single_split(["a", "b"], [0, 2]))


def test_a_missing_tagger_fails_early_unless_p_pos_is_zero(tmp_path):
    with_pos = Augmentation(n_iter=2, p_pos=0.1, pos_model="no_such_spacy_pipeline")
    with pytest.raises(pos.TaggerUnavailableError, match="--p_pos=0"):
        transfer.build_transfer_set(single_split(), "sst2", with_pos, 0, tmp_path / "t")
    without_pos = Augmentation(n_iter=2, p_pos=0.0, pos_model="no_such_spacy_pipeline")
    store = transfer.build_transfer_set(single_split(), "sst2", without_pos, 0, tmp_path / "t")
    assert store.manifest["statistics"]["augmented"] > 0


@pytest.mark.skipif(
    importlib.util.find_spec(pos.DEFAULT_POS_MODEL) is None, reason=f"{pos.DEFAULT_POS_MODEL} is not installed"
)
def test_pos_replacement_uses_training_words_of_the_same_tag(tmp_path):
    config = Augmentation(n_iter=4, p_mask=0.0, p_pos=1.0, p_ng=0.0)
    store = transfer.build_transfer_set(single_split(), "sst2", config, 0, tmp_path / "t", 2, tmp_path / "pos")
    assert len(list((tmp_path / "pos").glob("pos-tags-*.txt"))) == 1
    tokens = pos.tokenize_texts(SENTENCES)
    tags = pos.pos_tags(SENTENCES, pos.DEFAULT_POS_MODEL, tmp_path / "pos")
    words_by_tag = collections.defaultdict(set)
    for sentence_tokens, sentence_tags in zip(tokens, tags):
        for word, tag in zip(sentence_tokens, sentence_tags):
            words_by_tag[tag].add(word)
    rows = read_store(store)
    augmented = [texts[0].split() for texts, _, has_label in rows if not has_label]
    assert augmented
    # Every augmentation is a word-for-word rewrite of some original where each word keeps its tag.
    for words in augmented:
        assert any(
            len(words) == len(original) and all(word in words_by_tag[tag] for word, tag in zip(words, original_tags))
            for original, original_tags in zip(tokens, tags)
        ), words


@requires_glue
def test_real_sst2_sentences(tmp_path):
    with open(GLUE_DIR / "SST-2" / "train.tsv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[:300]
    split = single_split([row["sentence"] for row in rows], [int(row["label"]) for row in rows])
    config = Augmentation(n_iter=3, p_pos=0.0)
    store = transfer.build_transfer_set(split, "sst2", config, 0, tmp_path / "t", num_shards=2)
    statistics = store.manifest["statistics"]
    assert statistics["originals"] == 300 and statistics["generated"] == 900
    assert 300 < statistics["augmented"] < 900
    assert sum(1 for _ in store.dataset()) == statistics["examples"]
    assert tf.io.gfile.exists(store.manifest_path)
