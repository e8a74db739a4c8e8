"""A task's splits from files, GLUE presets, TFDS and the demo corpus: label order, held-out dev, errors that
name the file and line."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import GLUE_DIR, requires_glue

from bilstm_kd.config import DataConfig, RunConfig
from bilstm_kd.data.readers import DataError, Examples, hold_out, load_dataset, read_texts
from bilstm_kd.data.statistics import statistics
from bilstm_kd.data.tables import TableFormat
from bilstm_kd.data.tasks import get_task
from bilstm_kd.pipeline.inputs import data_source

QQP_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
MNLI_TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)
MNLI_DEV_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
)


def glue(task, directory, **flags):
    """The dataset of a GLUE preset read from `directory`, as the pipeline reads it."""
    config = RunConfig(data=DataConfig(task=task, data_source="glue", data_dir=str(directory), **flags))
    return load_dataset(data_source(config))


def files(train, **flags):
    """The dataset of user files, as the pipeline reads it from these flags."""
    flags.setdefault("text_column", "text")
    flags.setdefault("label_column", "label")
    return load_dataset(data_source(RunConfig(data=DataConfig(train_file=str(train), **flags))))


def write(path, lines, bom=False):
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sst2_trailing_spaces_and_labels(tmp_path):
    write(tmp_path / "train.tsv", ["sentence\tlabel", "a fine film \t1", 'it \'s " quoted " here \t0'])
    write(tmp_path / "dev.tsv", ["sentence\tlabel", "dull\t0"])
    dataset = glue("sst2", tmp_path)
    assert list(dataset.train.texts[0]) == ["a fine film", 'it \'s " quoted " here']
    assert dataset.train.labels.tolist() == [1, 0]
    assert dataset.train.labels.dtype == np.int32
    assert dataset.task == get_task("sst2") and list(dataset.dev) == ["dev"] and dataset.held_out is None


def test_mrpc_byte_order_mark_and_literal_quotes(tmp_path):
    lines = [
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        '1\t1\t2\tHe said " the witness " left .\tThe " witness " left , he said .',
        "0\t3\t4\tPrices rose 5 % .\tPrices fell .",
    ]
    write(tmp_path / "train.tsv", lines, bom=True)
    write(tmp_path / "dev.tsv", lines)
    dataset = glue("mrpc", tmp_path)
    examples = dataset.train
    assert examples.is_pair and dataset.task.metrics == ("f1", "accuracy") and dataset.task.positive_class == 1
    assert examples.texts[0][0] == 'He said " the witness " left .'
    assert examples.texts[1][1] == "Prices fell ."
    assert examples.labels.tolist() == [1, 0]


def test_qqp_format(tmp_path):
    lines = [
        QQP_HEADER,
        "0\t1\t2\tHow do I learn Keras?\tWhat is the best way to learn Keras?\t1",
        "1\t3\t4\tWhy?\tHow?\t0",
    ]
    write(tmp_path / "train.tsv", lines)
    write(tmp_path / "dev.tsv", lines)
    examples = glue("qqp", tmp_path).train
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
    dataset = glue("mnli", tmp_path)
    assert dataset.train.labels.tolist() == [0]
    assert list(dataset.dev) == ["dev_matched", "dev_mismatched"]
    assert dataset.dev["dev_matched"].labels.tolist() == [2]
    assert dataset.dev["dev_mismatched"].texts[0][0] == "It snows ."


@pytest.mark.parametrize(
    "row, message",
    [
        ("a film\t1\textra", r"line 3: expected 2 fields separated by '\\t', found 3"),
        ("a film\t7", r"line 3: label '7' is not among the --label_names labels \(0, 1\)"),
        ("   \t1", r"line 3: empty text in column 'sentence'"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    path = write(tmp_path / "train.tsv", ["sentence\tlabel", "good\t1", row])
    write(tmp_path / "dev.tsv", ["sentence\tlabel", "good\t1"])
    with pytest.raises(DataError, match=message) as error:
        glue("sst2", tmp_path)
    assert str(path) in str(error.value)


def test_missing_column_and_missing_file(tmp_path):
    write(tmp_path / "train.tsv", ["text\tlabel", "good\t1"])
    with pytest.raises(DataError, match=r"no column 'sentence' \(--text_column\); its columns are 'text', 'label'"):
        glue("sst2", tmp_path)
    with pytest.raises(DataError, match=r"nowhere/train.tsv does not exist"):
        glue("rte", tmp_path / "nowhere")


def test_train_limit_and_dataset_structure(tmp_path):
    write(tmp_path / "train.tsv", ["sentence\tlabel", "a\t1", "b\t0", "c\t1"])
    write(tmp_path / "dev.tsv", ["sentence\tlabel", "a\t1"])
    examples = glue("sst2", tmp_path, train_limit=2).train
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
    assert stats["text_a_words"] == {
        "mean": 2.67,
        "max": 4,
        "p95": 3,
        "p99": 4,
        "unknown": 0.5,
        "rows_with_unknown": 0.6667,
    }
    assert stats["text_b_words"]["unknown"] == 0.6667 and stats["text_b_words"]["rows_with_unknown"] == 0.3333
    assert "unknown" not in statistics(examples, get_task("mrpc"))["text_a_words"]


def test_demo_corpus():
    dataset = load_dataset(data_source(RunConfig()))
    train, dev = dataset.train, dataset.dev["dev"]
    assert dataset.task == get_task("sst2")
    assert (len(train), len(dev)) == (480, 160)
    assert set(np.unique(train.labels)) == {0, 1}
    assert not set(train.texts[0]) & set(dev.texts[0])  # no sentence in both splits


@requires_glue
@pytest.mark.parametrize(
    "task, directory, train_rows, dev_rows",
    [("sst2", "SST-2", 67349, 872), ("mrpc", "MRPC", 3668, 408), ("rte", "RTE", 2490, 277)],
)
def test_real_glue_files(task, directory, train_rows, dev_rows):
    dataset = glue(task, GLUE_DIR / directory)
    assert (len(dataset.train), len(dataset.dev["dev"])) == (train_rows, dev_rows)


def csv_file(path, rows, header="text,label"):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_user_labels_sorted_numerically_or_by_name_and_named_by_flag(tmp_path):
    train = csv_file(tmp_path / "train.csv", ["a,10", "b,2", "c,2", "d,10", "e,1", "f,1"])
    dataset = files(train, dev_fraction=0.5)
    assert dataset.task.label_names == ("1", "2", "10")  # integers: 2 before 10
    assert dataset.task.metrics == ("accuracy", "macro_f1")
    assert dataset.task.name == tmp_path.name  # a train.* file is named by its directory
    named = files(train, dev_fraction=0.5, label_names="10,2,1", positive_label="2", select_metric="f1")
    assert named.task.label_names == ("10", "2", "1") and named.task.metrics == ("f1", "accuracy", "macro_f1")
    all_labels = np.concatenate([named.train.labels, named.dev["dev"].labels])
    assert sorted(all_labels.tolist()) == [0, 0, 1, 1, 2, 2]
    words = csv_file(tmp_path / "words.csv", ["a,spam", "b,ham", "c,spam", "d,ham"])
    assert files(words, dev_fraction=0.5).task.label_names == ("ham", "spam")


@pytest.mark.parametrize(
    "train_rows, dev_rows, flags, message",
    [
        (["a,x", "b,x"], None, {}, r"train.csv: every training label is 'x'; a task needs two classes"),
        (["a,x", "b,y"], ["c,z"], {}, r"dev.csv, line 2: label 'z' is not among the training labels \(x, y\)"),
        (["a,x", '"  ",y'], None, {}, r"train.csv, line 3: empty text in column 'text'"),
        (["a,x", "b,"], None, {}, r"train.csv, line 3: empty label"),
        (["a,x", "b,y"], None, {"label_names": "x,z"}, r"line 3: label 'y' is not among the --label_names labels"),
        (["a,x", "b,y"], None, {"positive_label": "q"}, r"--positive_label='q' is not a label of .*train.csv"),
        (["a,x", "b,y", "c,x", "d,y"], None, {"select_metric": "macro_f1"}, "needs more than two classes"),
    ],
)
def test_user_data_errors_name_file_and_line(tmp_path, train_rows, dev_rows, flags, message):
    train = csv_file(tmp_path / "train.csv", train_rows)
    if dev_rows:
        flags["dev_file"] = str(csv_file(tmp_path / "dev.csv", dev_rows))
    with pytest.raises(ValueError, match=message):
        files(train, dev_fraction=0.5, **flags)


def test_pair_columns_and_test_split(tmp_path):
    header = "question,answer,relevant"
    train = csv_file(tmp_path / "train.csv", ["q1,a1,yes", "q2,a2,no", "q3,a3,yes", "q4,a4,no"], header)
    test = csv_file(tmp_path / "test.csv", ["q5,a5,no"], header)
    dataset = files(
        train, text_column="question", text_pair_column="answer", label_column="relevant", test_file=str(test)
    )
    assert dataset.task.is_pair and dataset.train.is_pair
    assert list(dataset.test) == ["test"] and dataset.test["test"].labels.tolist() == [0]
    assert dataset.test["test"].texts[1].tolist() == ["a5"]


def test_held_out_dev_is_stratified_seeded_and_recorded(tmp_path):
    labels = np.array([0] * 50 + [1] * 20 + [2] * 3 + [3] * 1)
    examples = Examples((np.array([f"t{i}" for i in range(len(labels))], dtype=object),), labels)
    chosen = hold_out(examples, 0.1, seed=3)
    assert np.bincount(labels[chosen], minlength=4).tolist() == [5, 2, 1, 0]  # a lone example stays in train
    assert chosen.tolist() == hold_out(examples, 0.1, seed=3).tolist()
    assert chosen.tolist() != hold_out(examples, 0.1, seed=4).tolist()

    rows = [f"text {i},{'a' if i % 3 else 'b'}" for i in range(60)]
    train = csv_file(tmp_path / "train.csv", rows)
    record = tmp_path / "run" / "data_split.json"
    source = data_source(RunConfig(data=DataConfig(train_file=str(train), text_column="text", label_column="label")))
    first = load_dataset(source, seed=7, split_record=str(record))
    written = json.loads(record.read_text())
    assert written["dev_rows"] == first.held_out["dev_rows"] and len(written["dev_rows"]) == 6
    held = {f"text {row}" for row in written["dev_rows"]}
    assert set(first.dev["dev"].texts[0]) == held and not held & set(first.train.texts[0])
    # A resumed run reads the record (here edited, to show it is read, not recomputed)...
    record.write_text(json.dumps({**written, "dev_rows": [0, 1, 2]}))
    assert load_dataset(source, seed=7, split_record=str(record)).dev["dev"].texts[0].tolist()[:3] == [
        "text 0",
        "text 1",
        "text 2",
    ]
    # ... while another seed makes a new split and records it.
    assert load_dataset(source, seed=8, split_record=str(record)).held_out["seed"] == 8
    assert json.loads(record.read_text())["seed"] == 8


def test_texts_to_classify_from_lines_or_columns(tmp_path):
    lines = tmp_path / "new.txt"
    lines.write_text("It's great!\n\nawful\n", encoding="utf-8")
    assert read_texts(str(lines), ("text",)) == [["It's great!", "", "awful"]]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a\tb\nc\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs.txt, line 2: a pair needs two tab-separated texts"):
        read_texts(str(pairs), ("a", "b"))
    table = csv_file(tmp_path / "new.csv", ['"x, y",1'])
    assert read_texts(str(table), ("text",), TableFormat()) == [["x, y"]]


def _write_tfds_dataset(data_dir):
    """Prepares a small TFDS dataset in `data_dir` (a builder defined here: no download)."""
    import tensorflow_datasets as tfds

    class TinyNews(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = {
                "description": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=["world", "sport", "tech"]),
            }
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(12), "test": self._generate_examples(3)}

        def _generate_examples(self, count):
            for index in range(count):
                yield index, {"description": f"news story {index}", "label": index % 3}

    TinyNews(data_dir=str(data_dir)).download_and_prepare()
    return "tiny_news"


def test_tfds_by_name_from_a_prepared_directory(tmp_path):
    name = _write_tfds_dataset(tmp_path)
    config = RunConfig(
        data=DataConfig(tfds_name=name, tfds_data_dir=str(tmp_path), text_column="description", label_column="label")
    )
    dataset = load_dataset(data_source(config), seed=0)
    assert dataset.task.label_names == ("world", "sport", "tech")  # the ClassLabel's order, not sorted
    assert len(dataset.train) + len(dataset.dev["dev"]) == 12  # no validation split: dev is held out
    test = dataset.test["test"]
    # TFDS stores examples shuffled: each story must keep its own class (story i is class i % 3).
    assert sorted(zip(test.texts[0].tolist(), test.labels.tolist())) == [(f"news story {i}", i) for i in range(3)]
    bad = RunConfig(
        data=DataConfig(tfds_name=name, tfds_data_dir=str(tmp_path), text_column="text", label_column="label")
    )
    with pytest.raises(DataError, match="has no feature 'text'; its features are description, label"):
        load_dataset(data_source(bad))


def test_tfds_failure_names_the_offline_options(tmp_path):
    config = RunConfig(data=DataConfig(task="sst2", data_source="tfds", tfds_data_dir=str(tmp_path / "none")))
    source = data_source(config)
    assert source.tfds_name == "glue/sst2" and source.dev == {"dev": "validation"}
    missing = RunConfig(
        data=DataConfig(
            tfds_name="no_such_dataset_here", tfds_data_dir=str(tmp_path), text_column="t", label_column="l"
        )
    )
    with pytest.raises(DataError, match=r"Offline, prepare the dataset in a --tfds_data_dir.*--train_file"):
        load_dataset(data_source(missing))
