"""GLUE TSV, TFDS and demo sources; every malformed-input error names the file and line."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import GLUE_DIR, requires_glue

from bilstm_kd.data.readers import DataError, Examples, load_split, read_glue_tsv, read_tfds
from bilstm_kd.data.statistics import statistics
from bilstm_kd.data.tasks import get_task

QQP_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
MNLI_TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)
MNLI_DEV_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
)


def write(path, lines, bom=False):
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sst2_trailing_spaces_and_labels(tmp_path):
    path = write(tmp_path / "train.tsv", ["sentence\tlabel", "a fine film \t1", 'it \'s " quoted " here \t0'])
    examples = read_glue_tsv(path, get_task("sst2"))
    assert list(examples.texts[0]) == ["a fine film", 'it \'s " quoted " here']
    assert examples.labels.tolist() == [1, 0]
    assert examples.labels.dtype == np.int32


def test_mrpc_byte_order_mark_and_literal_quotes(tmp_path):
    lines = [
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        '1\t1\t2\tHe said " the witness " left .\tThe " witness " left , he said .',
        "0\t3\t4\tPrices rose 5 % .\tPrices fell .",
    ]
    examples = read_glue_tsv(write(tmp_path / "dev.tsv", lines, bom=True), get_task("mrpc"))
    assert examples.is_pair
    assert examples.texts[0][0] == 'He said " the witness " left .'
    assert examples.texts[1][1] == "Prices fell ."
    assert examples.labels.tolist() == [1, 0]


def test_qqp_format(tmp_path):
    lines = [
        QQP_HEADER,
        "0\t1\t2\tHow do I learn Keras?\tWhat is the best way to learn Keras?\t1",
        "1\t3\t4\tWhy?\tHow?\t0",
    ]
    examples = read_glue_tsv(write(tmp_path / "train.tsv", lines), get_task("qqp"))
    assert examples.texts[1][0] == "What is the best way to learn Keras?"
    assert examples.labels.tolist() == [1, 0]


def test_mnli_train_and_dev_matched_layouts(tmp_path):
    parses = "\t".join(["( a )"] * 4)
    train = [
        MNLI_TRAIN_HEADER,
        f"0\t1\t1e\tfiction\t{parses}\tA man sleeps .\tA person rests .\tentailment\tentailment",
    ]
    dev = [
        MNLI_DEV_HEADER,
        f"0\t1\t1n\tslate\t{parses}\tIt rains .\tIt is sunny .\tcontradiction\tcontradiction\tneutral\t"
        "contradiction\tcontradiction\tcontradiction",
    ]
    write(tmp_path / "train.tsv", train)
    write(tmp_path / "dev_matched.tsv", dev)
    write(tmp_path / "dev_mismatched.tsv", [*dev[:1], dev[1].replace("It rains", "It snows")])
    mnli = get_task("mnli")
    assert load_split(mnli, "train", "glue", str(tmp_path)).labels.tolist() == [0]
    assert load_split(mnli, "dev_matched", "glue", str(tmp_path)).labels.tolist() == [2]
    assert load_split(mnli, "dev_mismatched", "glue", str(tmp_path)).texts[0][0] == "It snows ."
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_split(mnli, "dev", "glue", str(tmp_path))


@pytest.mark.parametrize(
    "row, message",
    [
        ("a film\t1\textra", r"line 3: expected 2 tab-separated fields, found 3"),
        ("a film\t7", r"line 3: unknown label '7' for task sst2; labels are 0, 1"),
        ("   \t1", r"line 3: empty text in column 'sentence'"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    path = write(tmp_path / "train.tsv", ["sentence\tlabel", "good\t1", row])
    with pytest.raises(DataError, match=message) as error:
        read_glue_tsv(path, get_task("sst2"))
    assert str(path) in str(error.value)


def test_missing_column_and_missing_file(tmp_path):
    path = write(tmp_path / "train.tsv", ["text\tlabel", "good\t1"])
    with pytest.raises(DataError, match=r"line 1: header .* lacks column\(s\) \['sentence'\]"):
        read_glue_tsv(path, get_task("sst2"))
    with pytest.raises(DataError, match=r"nowhere/dev.tsv does not exist.*RTE directory with train.tsv, dev.tsv"):
        read_glue_tsv(tmp_path / "nowhere" / "dev.tsv", get_task("rte"))


def test_train_limit_and_dataset_structure(tmp_path):
    write(tmp_path / "train.tsv", ["sentence\tlabel", "a\t1", "b\t0", "c\t1"])
    examples = load_split(get_task("sst2"), "train", "glue", str(tmp_path), train_limit=2)
    assert len(examples) == 2
    text, label = next(iter(examples.to_dataset()))
    assert text.dtype == tf.string and text.shape == () and int(label) == 1


def test_pair_dataset_structure():
    examples = Examples((np.array(["a", "b"], dtype=object), np.array(["c", "d"], dtype=object)), np.array([0, 1]))
    (first, second), label = next(iter(examples.to_dataset().skip(1)))
    assert (first.numpy(), second.numpy(), int(label)) == (b"b", b"d", 1)
    with pytest.raises(ValueError, match="different lengths"):
        Examples((np.array(["a"]),), np.array([0, 1]))


def test_statistics_count_words_outside_the_vocabulary():
    texts = (np.array(["A good film.", "a dull plot", "good"], dtype=object), np.array(["x", "", "y y"], dtype=object))
    examples = Examples(texts, np.array([1, 0, 1]))
    stats = statistics(examples, get_task("mrpc"), vocabulary=["[PAD]", "[UNK]", "[MASK]", "a", "good", "x"])
    assert stats["labels"] == {"0": 1, "1": 2}
    # text_a: "film", ".", "dull", "plot" of 8 words are unknown, in 2 of 3 rows; text_b: "y" twice of 3 words.
    assert stats["text_a_words"] == {"mean": 2.67, "max": 4, "p95": 3, "unknown": 0.5, "rows_with_unknown": 0.6667}
    assert stats["text_b_words"]["unknown"] == 0.6667 and stats["text_b_words"]["rows_with_unknown"] == 0.3333
    assert "unknown" not in statistics(examples, get_task("mrpc"))["text_a_words"]


def test_demo_corpus():
    sst2 = get_task("sst2")
    train, dev = load_split(sst2, "train"), load_split(sst2, "dev")
    assert (len(train), len(dev)) == (480, 160)
    assert set(np.unique(train.labels)) == {0, 1}
    assert not set(train.texts[0]) & set(dev.texts[0])  # no sentence in both splits


def test_tfds_source_through_a_fake_builder():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        examples = read_tfds(get_task("rte"), "dev")
    assert len(examples) == 6 and examples.is_pair
    assert all(isinstance(text, str) for text in examples.texts[1])
    assert set(examples.labels) <= {0, 1}


def test_tfds_failure_names_the_offline_options(tmp_path):
    with pytest.raises(DataError, match="--data_source=glue --data_dir"):
        read_tfds(get_task("sst2"), "train", data_dir=str(tmp_path / "not-prepared"), download=False)


@requires_glue
@pytest.mark.parametrize(
    "task, directory, train_rows, dev_rows",
    [("sst2", "SST-2", 67349, 872), ("mrpc", "MRPC", 3668, 408), ("rte", "RTE", 2490, 277)],
)
def test_real_glue_files(task, directory, train_rows, dev_rows):
    glue_task, data_dir = get_task(task), str(GLUE_DIR / directory)
    assert len(load_split(glue_task, "train", "glue", data_dir)) == train_rows
    assert len(load_split(glue_task, "dev", "glue", data_dir)) == dev_rows
