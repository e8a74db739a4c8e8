"""The one "reuse if unchanged" layer: fingerprints, hashes of texts and files, atomic JSON.

Work is reused when the fingerprint of everything it depends on is the one recorded beside it: the stage
records (`pipeline/runner.py`), a fine-tuned teacher's `teacher.json`, the shard manifests of the transfer
set, the POS tag cache and the student's `embeddings.npz` all compare a `fingerprint` of their inputs, and
every JSON record is read with `read_json` (missing or half-written: None) and written with `write_json`
(never half-written).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any


def fingerprint(values: Mapping[str, Any]) -> str:
    """A stable hash of JSON-serializable values (16 hex digits)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def texts_fingerprint(columns: Sequence[Iterable[Any]], labels: Iterable[Any] | None = None) -> str:
    """A hash of text columns (order matters) and, optionally, their labels: so that changed data is never
    mistaken for old data."""
    values: dict[str, Any] = {"texts": [list(map(str, column)) for column in columns]}
    values["labels"] = None if labels is None else [int(label) for label in labels]
    return fingerprint(values)


def examples_fingerprint(examples: Any) -> str:
    """`texts_fingerprint` of labelled examples: anything with `texts` (columns) and `labels`."""
    return texts_fingerprint(examples.texts, examples.labels)


def file_fingerprint(path: str | os.PathLike) -> str:
    """A hash of a file's bytes (16 hex digits), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in `path`, or None when the file is missing or not whole."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(path: str | os.PathLike, values: Any, default: Callable[[Any], Any] = str) -> None:
    """Writes JSON atomically (a temporary file renamed into place): a reader never sees half a file."""
    temporary = f"{os.fspath(path)}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(values, file, indent=2, sort_keys=True, default=default)
        file.write("\n")
    os.replace(temporary, path)
