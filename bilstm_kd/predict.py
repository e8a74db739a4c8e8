"""Classify text with a trained student.

    python -m bilstm_kd.predict --model runs/mine [--input FILE|-] [--output FILE|-]

`--model` is a run directory, its `export/` directory, a SavedModel directory or a `.tflite` file
(`--kind` picks one export when a run has both). The input is a CSV, TSV, JSON Lines or Parquet file (its
`--text_column`, and `--text_pair_column` for pairs) or anything else read as one text per line (a pair as
two tab-separated texts; "-": standard input). Each row out has the text, the label and one probability per
class: JSON Lines on standard output or in a .jsonl file, columns in a .csv or .tsv file.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import TextIO

from absl import app, flags

from bilstm_kd import cli

flags.DEFINE_string("model", None, "A run directory, its export/ directory, a SavedModel or a .tflite file.")
flags.DEFINE_enum("kind", "auto", ("auto", "saved_model", "tflite"), "Which export to use (auto: the SavedModel).")
flags.DEFINE_string("input", "-", "Texts to classify: a data file, a text file (one per line) or - (stdin).")
flags.DEFINE_string("output", "-", "Where to write: - (JSON Lines on stdout), a .jsonl, .csv or .tsv file.")
flags.DEFINE_string("text_column", "text", "The text column of a data file.")
flags.DEFINE_string("text_pair_column", "", "The second text column of a pair task's data file.")
flags.DEFINE_integer("batch_size", 512, "Texts per model call.")
cli.define_table_flags()
flags.mark_flag_as_required("model")
FLAGS = flags.FLAGS


def write_predictions(file: TextIO, file_format: str, columns: list[list[str]], predictions) -> None:
    """Rows of the texts, the label and each class' probability, as JSON Lines, CSV or TSV."""
    names = ["text"] if len(columns) == 1 else ["text_a", "text_b"]
    if file_format == "jsonl":
        for row, texts in enumerate(zip(*columns)):
            probabilities = dict(zip(predictions.label_names, map(float, predictions.probabilities[row])))
            record = {**dict(zip(names, texts)), "label": predictions.labels[row], "probabilities": probabilities}
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    writer = csv.writer(file, delimiter="\t" if file_format == "tsv" else ",", lineterminator="\n")
    if file_format == "tsv":  # no quoting in TSV: a tab or newline inside a text becomes a space
        columns = [[" ".join(text.split()) for text in column] for column in columns]
    writer.writerow([*names, "label", *(f"p_{name}" for name in predictions.label_names)])
    for row, texts in enumerate(zip(*columns)):
        writer.writerow([*texts, predictions.labels[row], *(f"{p:.6f}" for p in predictions.probabilities[row])])


def main(argv: list[str]) -> int:
    def command() -> int:
        from bilstm_kd.classifier import load_classifier
        from bilstm_kd.data.readers import read_texts
        from bilstm_kd.data.tables import EXTENSIONS

        classifier = load_classifier(FLAGS.model, FLAGS.kind)
        text_columns = (FLAGS.text_column, FLAGS.text_pair_column) if classifier.is_pair else (FLAGS.text_column,)
        if classifier.is_pair and not FLAGS.text_pair_column and FLAGS.input != "-":
            extension = os.path.splitext(FLAGS.input)[1].lower()
            if extension in EXTENSIONS:
                raise app.UsageError(f"{FLAGS.model} classifies pairs: name the second text with --text_pair_column")
        columns = read_texts(FLAGS.input, text_columns, cli.table_format_from_flags())
        predictions = classifier.predict(*columns, batch_size=FLAGS.batch_size)
        output_format = "jsonl" if FLAGS.output == "-" else os.path.splitext(FLAGS.output)[1].lower().lstrip(".")
        if output_format not in ("jsonl", "csv", "tsv"):
            raise app.UsageError(f"--output={FLAGS.output}: write a .jsonl, .csv or .tsv file (or - for stdout)")
        if FLAGS.output == "-":
            write_predictions(sys.stdout, output_format, columns, predictions)
        else:
            with open(FLAGS.output, "w", encoding="utf-8", newline="") as file:
                write_predictions(file, output_format, columns, predictions)
        return 0

    return cli.run_command(argv, command)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
