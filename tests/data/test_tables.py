"""Data files into columns: each format, the options real files need, and errors that name file and line."""

import json

import pytest

from bilstm_kd.data.tables import DataError, TableFormat, read_table


def test_csv_quoting_commas_quotes_and_newlines(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('text,label\n"Great, really",pos\n"She said ""no""\nand left",neg\nplain,neg\n', encoding="utf-8")
    table = read_table(path)
    assert table.columns["text"] == ["Great, really", 'She said "no"\nand left', "plain"]
    assert table.columns["label"] == ["pos", "neg", "neg"]
    assert table.lines == [2, 3, 5]  # the quoted newline makes row 2 two lines long


def test_tsv_has_no_quoting_like_glue(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('sentence\tlabel\n" quoted " here\t1\n', encoding="utf-8")
    assert read_table(path).columns["sentence"] == ['" quoted " here']


def test_semicolons_without_header_and_other_extension(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("i feel great;joy\ni am sad;sadness\n", encoding="utf-8")
    table_format = TableFormat(format="csv", delimiter=";", header=False, column_names=("text", "label"))
    table = read_table(path, table_format)
    assert table.columns == {"text": ["i feel great", "i am sad"], "label": ["joy", "sadness"]}
    with pytest.raises(DataError, match=r"train.txt: cannot tell the format .* --data_format"):
        read_table(path)
    with pytest.raises(DataError, match="name the columns with --column_names"):
        read_table(path, TableFormat(format="csv", delimiter=";", header=False))


def test_latin_1_and_the_line_of_an_invalid_utf_8_byte(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("text,label\nfine,a\ncaf\xe9 au lait,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"train.csv, line 3: byte b'\\xe9' is not valid utf-8.*--encoding"):
        read_table(path)
    assert read_table(path, TableFormat(encoding="latin-1")).columns["text"][1] == "café au lait"


def test_utf_8_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\nx,a\n")
    assert list(read_table(path).columns) == ["text", "label"]


def test_json_lines_and_its_errors(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"text": "Where is my card?", "intent": "card_arrival"}, {"text": "Top up failed", "intent": 7}]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n", encoding="utf-8")
    table = read_table(path)
    assert table.columns["intent"] == ["card_arrival", 7] and table.lines == [1, 2]
    path.write_text('{"text": "a", "intent": "x"}\n{"text": "b", intent: "y"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl, line 2: invalid JSON"):
        read_table(path)
    path.write_text('{"text": "a", "intent": "x"}\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: keys .* \(missing \['intent'\]\)"):
        read_table(path)


def test_parquet(tmp_path):
    parquet = pytest.importorskip("pyarrow.parquet")
    import pyarrow

    path = tmp_path / "train.parquet"
    parquet.write_table(pyarrow.table({"text": ["a", "b"], "label": [0, 3]}), path)
    table = read_table(path)
    assert table.columns == {"text": ["a", "b"], "label": [0, 3]}
    assert table.where(1) == f"{path}, row 2"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", r"is empty: no header row"),
        ("text,label\n", r"has no data rows"),
        ("text,label\na,b,c\n", r"line 2: expected 2 fields separated by ',', found 3"),
        ('text,label\n"open,a\n', r"line \d: .*quoted but not closed"),
        ("text,text\na,b\n", r"line 1: the header repeats a column name"),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as error:
        read_table(path)
    assert str(path) in str(error.value)


def test_missing_column_names_the_columns_the_file_has(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("sentence,label\na,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no column 'text' \(--text_column\); its columns are 'sentence', 'label'"):
        read_table(path).column("text", "text_column")
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nowhere.csv")
