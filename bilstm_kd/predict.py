"""Classify texts with a trained student.

    bilstm-kd predict --model runs/mine [--input FILE|-] [--output FILE|-] [--top_k 3] [--all_scores]

`--model` is a run directory, its `export/` directory, a SavedModel directory or a `.tflite` file
(`--kind` picks one export when a run has both). The input is a CSV, TSV, JSON Lines or Parquet file (its
`--text_column`, and `--text_pair_column` for pairs) or anything else read as one text per line (a pair as
two tab-separated texts; "-": standard input). Each row out is the input row (a data file's columns as they
are; a text file's text as `text`) with `label`, the most probable class, and `score`, its probability; with
`--top_k=K` also the K best (`top_k`, a list in JSON Lines; `label_2`, `score_2`, ... in CSV/TSV), with
`--all_scores` every class's probability. JSON Lines on standard output or in a .jsonl file, columns in a .csv
or .tsv file. An input column named like one of these is written as `input_<name>`. An empty text gets no label
(null, an empty cell) and is counted on stderr.

Probabilities are rounded to 6 decimals: a fixed number of places reads and sums alike in JSON and CSV, keeps
scores near 1 apart down to 0.999999, and is finer than the 1e-5 to which the exports agree with each other.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import Any, TextIO

from absl import app, flags

from bilstm_kd import cli

flags.DEFINE_string("model", None, "A run directory, its export/ directory, a SavedModel or a .tflite file.")
flags.DEFINE_enum("kind", "auto", ("auto", "saved_model", "tflite"), "Which export to use (auto: the SavedModel).")
flags.DEFINE_string("input", "-", "Texts to classify: a data file, a text file (one per line) or - (stdin).")
flags.DEFINE_string("output", "-", "Where to write: - (JSON Lines on stdout), a .jsonl, .csv or .tsv file.")
flags.DEFINE_string("text_column", "text", "The text column of a data file.")
flags.DEFINE_string("text_pair_column", "", "The second text column of a pair task's data file.")
flags.DEFINE_integer("top_k", 1, "Also give the K most probable classes with their probabilities.", lower_bound=1)
flags.DEFINE_bool("all_scores", False, "Also give every class's probability.")
flags.DEFINE_integer("batch_size", 512, "Texts per model call.", lower_bound=1)
cli.define_table_flags()
flags.mark_flag_as_required("model")
FLAGS = flags.FLAGS

HELP = cli.CommandHelp(
    command="predict",
    usage="--model RUN [--input FILE|-] [--output FILE|-] [--top_k K] [--all_scores]",
    summary="Classifies texts with a trained student: each row out gets a label and its score.",
    first=("model", "input", "output", "text_column", "text_pair_column", "top_k", "all_scores"),
    groups=(("Reading the input file", cli.TABLE_FLAGS),),
)
OUTPUT_FIELDS = ("label", "score", "top_k", "scores")
DECIMALS = 6


def prediction_rows(columns: dict[str, list[Any]], answers: list, top_k: int = 1, all_scores: bool = False) -> list:
    """One dict a row: the input `columns` (one named like an output field gets an `input_` prefix), then
    `label` and `score`, `top_k` (a list of {label, score}) when `top_k` > 1 and `scores` (class ->
    probability) with `all_scores`; `answers` holds a `classifier.Prediction` a row, or None for no answer."""
    names = {name: f"input_{name}" if name in OUTPUT_FIELDS else name for name in columns}
    rows = []
    for index, answer in enumerate(answers):
        row = {names[name]: values[index] for name, values in columns.items()}
        row["label"] = answer.label if answer else None
        row["score"] = round(answer.score, DECIMALS) if answer else None
        if top_k > 1:
            best = answer.top(top_k) if answer else []
            row["top_k"] = [{"label": label, "score": round(score, DECIMALS)} for label, score in best]
        if all_scores:
            scores = zip(answer.label_names, answer.probabilities.tolist()) if answer else ()
            row["scores"] = {label: round(score, DECIMALS) for label, score in scores}
        rows.append(row)
    return rows


def write_rows(
    file: TextIO, file_format: str, rows: list[dict[str, Any]], label_names: tuple[str, ...], top_k: int = 1
) -> None:
    """`prediction_rows` as JSON Lines, or as CSV/TSV columns: `top_k` as label_2, score_2, ... label_K, score_K
    after `label` and `score`, `scores` as p_<class>."""
    if file_format == "jsonl":
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return
    writer = csv.writer(file, delimiter="\t" if file_format == "tsv" else ",", lineterminator="\n")
    inputs = [name for name in rows[0] if name not in OUTPUT_FIELDS] if rows else []
    all_scores = bool(rows) and "scores" in rows[0]
    ranks = range(2, top_k + 1)
    writer.writerow(
        [*inputs, "label", "score"]
        + [f"{field}_{rank}" for rank in ranks for field in ("label", "score")]
        + ([f"p_{name}" for name in label_names] if all_scores else [])
    )
    for row in rows:
        best = [(row["label"], row["score"])] + [(entry["label"], entry["score"]) for entry in row.get("top_k", [])[1:]]
        best += [(None, None)] * (top_k - len(best))  # an empty text's row
        scores = [row["scores"].get(name) for name in label_names] if all_scores else []
        cells = [_text(row[name], file_format) for name in inputs]
        for label, score in best:
            cells += [_text(label, file_format), _score(score)]
        writer.writerow(cells + [_score(score) for score in scores])


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.{DECIMALS}f}"


def _text(value: Any, file_format: str) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    # No quoting in TSV: a tab or newline inside a value becomes a space.
    return " ".join(text.split()) if file_format == "tsv" and any(c in text for c in "\t\n\r") else text


def main(argv: list[str]) -> int:
    def command() -> int:
        output_format = "jsonl" if FLAGS.output == "-" else os.path.splitext(FLAGS.output)[1].lower().lstrip(".")
        if output_format not in ("jsonl", "csv", "tsv"):
            raise app.UsageError(f"--output={FLAGS.output}: write a .jsonl, .csv or .tsv file (or - for stdout)")
        with cli.quiet_tensorflow():
            from bilstm_kd.classifier import load_classifier
            from bilstm_kd.data.readers import read_rows
            from bilstm_kd.data.tables import EXTENSIONS

            classifier = load_classifier(FLAGS.model, FLAGS.kind)
            text_columns = (FLAGS.text_column, FLAGS.text_pair_column) if classifier.is_pair else (FLAGS.text_column,)
            data_file = FLAGS.input != "-" and os.path.splitext(FLAGS.input)[1].lower() in EXTENSIONS
            if classifier.is_pair and not FLAGS.text_pair_column and data_file:
                raise app.UsageError(f"{FLAGS.model} classifies pairs: name the second text with --text_pair_column")
            texts, columns = read_rows(FLAGS.input, text_columns, cli.table_format_from_flags())
            answered = [row for row, row_texts in enumerate(zip(*texts)) if all(text.strip() for text in row_texts)]
            predictions = classifier.predict(
                *([column[row] for row in answered] for column in texts), batch_size=FLAGS.batch_size
            )
        answers: list = [None] * len(texts[0])
        for row, prediction in zip(answered, predictions):
            answers[row] = prediction
        rows = prediction_rows(columns, answers, FLAGS.top_k, FLAGS.all_scores)
        if FLAGS.output == "-":
            write_rows(sys.stdout, output_format, rows, classifier.label_names, FLAGS.top_k)
        else:
            with open(FLAGS.output, "w", encoding="utf-8", newline="") as file:
                write_rows(file, output_format, rows, classifier.label_names, FLAGS.top_k)
        _note_unanswered(answers, set(columns) & set(OUTPUT_FIELDS))
        return 0

    return cli.run_command(argv, command)


def _note_unanswered(answers: list, renamed: set[str]) -> None:
    """Says on stderr which rows got no answer and which input columns were renamed."""
    empty = [row for row, answer in enumerate(answers, start=1) if answer is None]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        print(f"note: {len(empty)} of {len(answers)} texts are empty and have no label (rows {shown})", file=sys.stderr)
    for name in sorted(renamed):
        print(f"note: the input's column {name!r} is written as 'input_{name}'", file=sys.stderr)


def run(argv: list[str] | None = None) -> None:
    """Parses the flags in `argv` (default: the command line) and predicts; exits with the command's status."""
    app.run(main, argv, flags_parser=cli.flags_parser(HELP))


if __name__ == "__main__":
    run()
