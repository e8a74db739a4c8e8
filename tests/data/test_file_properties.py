"""Property-based: any file a user may give, read as the pipeline reads it. Well-formed rows come back exactly (any
Unicode, BOMs, mixed line endings, other encodings); anything else is one line naming the file, never a
traceback. Bounded examples, a fixed seed."""

import csv
import io
import json

import pytest
from conftest import user_text
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bilstm_kd.config import DataConfig, RunConfig
from bilstm_kd.data.readers import DataError, load_dataset, read_texts
from bilstm_kd.pipeline.inputs import data_source

FILES = settings(max_examples=120, derandomize=True, database=None, deadline=None)
LABELS = ("pos", "neg", "très bien", "1")


def load(path, **flags):
    config = RunConfig(data=DataConfig(train_file=str(path), text_column="text", label_column="label", **flags))
    return load_dataset(data_source(config))


def assert_one_line_naming(error, path):
    message = str(error)
    assert str(path) in message and "\n" not in message, message


@st.composite
def damaged_files(draw):
    """A well-formed file's bytes (any of the three formats), maybe cut short, maybe with bytes spliced in."""
    text = user_text(max_size=12).map(lambda text: text.replace('"', "").replace("\t", " ")).filter(str.strip)
    rows = draw(st.lists(st.tuples(text, st.sampled_from(LABELS)), min_size=4, max_size=8))
    layout = draw(st.sampled_from(["csv", "tsv", "jsonl"]))
    if layout == "jsonl":
        text = "".join(json.dumps({"text": t, "label": label}, ensure_ascii=False) + "\n" for t, label in rows)
    else:
        separator = "," if layout == "csv" else "\t"
        text = f"text{separator}label\n" + "".join(f'"{t}"{separator}{label}\r\n' for t, label in rows)
    data = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf", b"\xff\xfe"])) + text.encode("utf-8")
    data = data[: draw(st.one_of(st.just(len(data)), st.integers(0, len(data))))]
    position = draw(st.integers(0, len(data)))
    spliced = draw(st.one_of(st.just(b""), st.binary(max_size=3), user_text(max_size=4).map(str.encode)))
    extension = draw(st.sampled_from([layout, layout, "csv", "tsv", "jsonl"]))
    return extension, data[:position] + spliced + data[position:]


@settings(FILES, max_examples=400)  # fast: a few milliseconds a file
@given(file=st.one_of(damaged_files(), st.tuples(st.sampled_from(["csv", "tsv", "jsonl"]), st.binary(max_size=300))))
@example(file=("csv", b'text,label\n"open quote,pos\n'))
@example(file=("jsonl", b'{"text": "\\ud800", "label": "pos"}\n'))  # a lone surrogate escape: not text
@example(file=("tsv", "text\tlabel\nA\u2028B\tpos\nC\tneg\n".encode()))
def test_any_bytes_give_rows_or_one_line_naming_the_file(file, tmp_path_factory):
    extension, content = file
    path = tmp_path_factory.mktemp("bytes") / f"train.{extension}"
    path.write_bytes(content)
    try:
        dataset = load(path, dev_fraction=0.5)
    except DataError as error:
        assert_one_line_naming(error, path)
    else:
        assert len(dataset.train) and all(isinstance(text, str) for text in dataset.train.texts[0])


def rows_strategy():
    text = user_text(max_size=30).filter(lambda text: text.strip())
    return st.lists(st.tuples(text, st.sampled_from(LABELS)), min_size=4, max_size=12).filter(
        lambda rows: len({label for _, label in rows}) >= 2
    )


def encode(text, encoding, bom):
    data = text.encode(encoding)
    return (b"\xef\xbb\xbf" if bom and encoding == "utf-8" else b"") + data


@FILES
@given(
    rows=rows_strategy(),
    endings=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=4),
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]),
    bom=st.booleans(),
)
def test_csv_rows_come_back_exactly(rows, endings, encoding, bom, tmp_path_factory):
    records = []
    for number, (text, label) in enumerate([("text", "label"), *rows]):
        buffer = io.StringIO()  # RFC 4180 quoting (a field with CR or LF quoted), then a mix of line ends
        csv.writer(buffer, lineterminator="\r\n").writerow([text, label])
        records.append(buffer.getvalue().removesuffix("\r\n") + endings[number % len(endings)])
    path = tmp_path_factory.mktemp("csv") / "train.csv"
    path.write_bytes(encode("".join(records), encoding, bom))
    dev = tmp_path_factory.mktemp("csv") / "dev.csv"
    dev.write_bytes(path.read_bytes())
    dataset = load(path, dev_file=str(dev), encoding=encoding)
    assert list(dataset.train.texts[0]) == [text.strip() for text, _ in rows]
    assert [dataset.task.label_names[label] for label in dataset.train.labels] == [label for _, label in rows]


@FILES
@given(rows=rows_strategy(), ascii_only=st.booleans(), ending=st.sampled_from(["\n", "\r\n"]))
def test_json_lines_rows_come_back_exactly(rows, ascii_only, ending, tmp_path_factory):
    lines = [json.dumps({"text": text, "label": label}, ensure_ascii=ascii_only) for text, label in rows]
    path = tmp_path_factory.mktemp("jsonl") / "train.jsonl"
    path.write_bytes(ending.join(lines).encode("utf-8"))
    dataset = load(path, dev_file=str(path))
    assert list(dataset.train.texts[0]) == [text.strip() for text, _ in rows]


@FILES
@given(rows=rows_strategy())
def test_tsv_rows_come_back_exactly(rows, tmp_path_factory):
    # TSV has no quoting: a text holds no tab or line end (the reader splits at "\n", "\r\n" and "\r" only).
    rows = [(text.replace("\t", " ").replace("\n", " ").replace("\r", " "), label) for text, label in rows]
    rows = [(text, label) for text, label in rows if text.strip()]
    if len({label for _, label in rows}) < 2:
        return
    path = tmp_path_factory.mktemp("tsv") / "train.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    dataset = load(path, dev_file=str(path))
    assert list(dataset.train.texts[0]) == [text.strip() for text, _ in rows]


@FILES
@given(texts=st.lists(user_text(max_size=30), min_size=1, max_size=8))
def test_one_text_a_line_keeps_unicode_line_separators_inside_a_text(texts, tmp_path_factory):
    texts = [text.replace("\r", " ").replace("\n", " ") for text in texts]
    path = tmp_path_factory.mktemp("lines") / "new.txt"
    path.write_bytes("".join(f"{text}\n" for text in texts).encode("utf-8"))
    assert read_texts(str(path), ("text",)) == [[text.strip() for text in texts]]


def test_a_label_with_a_line_break_is_refused_when_the_data_is_read(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\ngood,"po\ns"\nbad,neg\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"train.csv, line 2: label 'po\\ns' holds a line break"):
        load(path)
