"""Reading and validating a large user CSV; prints one JSON object.

Writes a CSV of `--rows` rows (default 1,000,000) to a temporary directory: a text of 5 to 30 words drawn
from a 5,000-word list, some with a comma and quotes inside (so they are quoted), and one of `--classes`
intent labels. Then times, in this process:

- `read_table`: decoding the file and parsing it with Python's `csv` module into columns;
- `load_dataset`: the whole way a run reads its data: reading, checking every text and label (file and line
  on error), fixing the class order, and holding out a stratified 10% dev split (with the fingerprint that
  records it).

    python benchmarks/read_csv.py [--rows 1000000] [--classes 77]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time

import numpy as np

from bilstm_kd.data.readers import DataSource, load_dataset
from bilstm_kd.data.tables import read_table


def write_file(path: str, rows: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{index}" for index in range(5000)])
    labels = [f"intent_{index}" for index in range(classes)]
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        lengths = rng.integers(5, 31, size=rows)
        words = rng.choice(vocabulary, size=int(lengths.sum()))
        label_ids = rng.integers(0, classes, size=rows)
        start = 0
        for row in range(rows):
            text = " ".join(words[start : start + lengths[row]])
            start += lengths[row]
            if row % 10 == 0:
                text = f'{text}, "quoted"'
            writer.writerow([text, labels[label_ids[row]]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=77)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "train.csv")
        started = time.perf_counter()
        write_file(path, args.rows, args.classes)
        write_seconds = time.perf_counter() - started
        started = time.perf_counter()
        table = read_table(path)
        read_seconds = time.perf_counter() - started
        assert len(table) == args.rows
        del table
        started = time.perf_counter()
        dataset = load_dataset(DataSource("bench", path, ("text",), "label"), seed=0)
        load_seconds = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "classes": dataset.task.num_classes,
                    "file_mb": round(os.path.getsize(path) / 1e6, 1),
                    "write_seconds": round(write_seconds, 2),
                    "read_table_seconds": round(read_seconds, 2),
                    "load_dataset_seconds": round(load_seconds, 2),
                    "train_rows": len(dataset.train),
                    "dev_rows": len(dataset.dev["dev"]),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
