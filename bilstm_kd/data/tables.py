"""Reading a data file into named columns: CSV, TSV, JSON Lines or Parquet.

Every reader gives a `Table`: its column names, one list of values per column, and the line (or row) of the
file each row came from, so later checks can name it. CSV is read by Python's `csv` module (quoted fields
may hold the delimiter, quotes and newlines); TSV is the IANA form (no quoting, no tab inside a field), as
GLUE writes it. The whole file is decoded first, so a byte that is not valid in `--encoding` is reported with
its line.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from typing import Any

FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class DataError(ValueError):
    """Input data is malformed or missing; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class TableFormat:
    """How to read a data file.

    Args:
        format: one of `FORMATS`; "auto" picks it by extension (.csv, .tsv, .jsonl/.ndjson, .parquet).
        delimiter: the field separator of CSV/TSV files (empty: "," for CSV, a tab for TSV).
        header: whether the first line of a CSV/TSV file names the columns.
        column_names: the column names of a CSV/TSV file without a header row.
        encoding: the text encoding of CSV/TSV/JSON Lines files (a UTF-8 byte-order mark is skipped).
    """

    format: str = "auto"
    delimiter: str = ""
    header: bool = True
    column_names: tuple[str, ...] = ()
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"Unknown data format {self.format!r}; formats: {', '.join(FORMATS)}")
        if len(self.delimiter) > 1:
            raise ValueError(f"A delimiter is one character, got {self.delimiter!r}")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ValueError(f"Unknown text encoding {self.encoding!r}") from None

    def format_of(self, path: str) -> str:
        if self.format != "auto":
            return self.format
        extension = os.path.splitext(path)[1].lower()
        if extension not in EXTENSIONS:
            raise DataError(
                f"{path}: cannot tell the format from the extension {extension!r}; name it with "
                f"--data_format ({', '.join(FORMATS[1:])})"
            )
        return EXTENSIONS[extension]


@dataclasses.dataclass(frozen=True)
class Table:
    """The rows of one file, by column.

    Args:
        path: the file.
        columns: the values of each column, by name, in file order.
        lines: the line of the file where each row starts (the row number for Parquet).
        unit: what `lines` counts, "line" or "row", for messages.
    """

    path: str
    columns: dict[str, list[Any]]
    lines: list[int]
    unit: str = "line"

    def __len__(self) -> int:
        return len(self.lines)

    def where(self, row: int) -> str:
        """ "<path>, line N" of a row, for messages."""
        return f"{self.path}, {self.unit} {self.lines[row]}"

    def column(self, name: str, flag: str) -> list[Any]:
        """The values of column `name`; a missing column is an error naming the `flag` and the file's columns."""
        if name not in self.columns:
            raise DataError(
                f"{self.path} has no column {name!r} (--{flag}); its columns are {', '.join(map(repr, self.columns))}"
            )
        return self.columns[name]


def read_table(path: str | os.PathLike, table_format: TableFormat | None = None) -> Table:
    """Reads a data file into a `Table`; an empty or malformed file raises `DataError` naming file and line."""
    path = os.fspath(path)
    table_format = table_format or TableFormat()
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist" if not os.path.exists(path) else f"{path} is not a file")
    file_format = table_format.format_of(path)
    if file_format == "parquet":
        table = _read_parquet(path)
    else:
        text = decode_file(path, table_format.encoding)
        table = (
            _read_jsonl(path, text)
            if file_format == "jsonl"
            else _read_delimited(path, text, file_format, table_format)
        )
    if not len(table):
        raise DataError(f"{path} has no data rows")
    return table


def decode_file(path: str, encoding: str) -> str:
    """The text of a file; a byte invalid in `encoding` is an error naming its line."""
    with open(path, "rb") as file:
        data = file.read()
    if encoding.replace("_", "-").lower() in ("utf-8", "utf8") and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{path}, line {line}: byte {data[error.start : error.start + 1]!r} is not valid {encoding}; "
            f"give the file's encoding with --encoding (e.g. --encoding=latin-1)"
        ) from None


def split_lines(text: str) -> list[str]:
    """The lines of a text file: split at "\n", "\r\n" and "\r" only. `str.splitlines` also splits at
    U+2028, U+0085 and other characters a line of text (or a JSON string) may hold."""
    return text.replace("\r\n", "\n").replace("\r", "\n").removesuffix("\n").split("\n") if text else []


def _read_delimited(path: str, text: str, file_format: str, table_format: TableFormat) -> Table:
    delimiter = table_format.delimiter or ("\t" if file_format == "tsv" else ",")
    quoting = csv.QUOTE_NONE if file_format == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    line = 1  # where the next record starts
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if row:  # blank lines carry no row
                rows.append(row)
                lines.append(line)
            line = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}, line {reader.line_num}: {error} (a CSV field quoted but not closed?)") from None
    if table_format.header:
        if not rows:
            raise DataError(f"{path} is empty: no header row and no data rows")
        names, header_line = rows.pop(0), lines.pop(0)
        if len(set(names)) != len(names):
            raise DataError(f"{path}, line {header_line}: the header repeats a column name: {names}")
    elif table_format.column_names:
        names = list(table_format.column_names)
    else:
        raise DataError(f"{path}: without a header row (--noheader), name the columns with --column_names")
    columns: list[list[str]] = [[] for _ in names]
    for row, row_line in zip(rows, lines):
        if len(row) != len(names):
            raise DataError(
                f"{path}, line {row_line}: expected {len(names)} fields separated by {delimiter!r}, found {len(row)}"
            )
        for column, value in zip(columns, row):
            column.append(value)
    return Table(path, dict(zip(names, columns)), lines)


def _read_jsonl(path: str, text: str) -> Table:
    columns: dict[str, list[Any]] = {}
    lines: list[int] = []
    for line_number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}, line {line_number}: invalid JSON: {error.msg} at column {error.colno}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {line_number}: expected a JSON object, found {type(record).__name__}")
        if not lines:
            columns = {key: [] for key in record}
        elif record.keys() != columns.keys():
            missing = [key for key in columns if key not in record]
            raise DataError(
                f"{path}, line {line_number}: keys {sorted(record)} differ from the first row's {sorted(columns)}"
                + (f" (missing {missing})" if missing else "")
            )
        for key, value in record.items():
            columns[key].append(value)
        lines.append(line_number)
    return Table(path, columns, lines)


def _read_parquet(path: str) -> Table:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = parquet.read_table(path)
    except Exception as error:  # pyarrow raises its own error kinds for damaged files
        raise DataError(f"{path}: not a readable Parquet file: {error}") from None
    return Table(path, table.to_pydict(), list(range(1, table.num_rows + 1)), unit="row")
