"""Score a trained student on a labelled file, with the metric code training uses.

    bilstm-kd evaluate --model runs/mine --data test.csv --text_column text --label_column label [--json]

Prints a short table: accuracy, macro-F1 (over the classes present in the gold labels or the predictions), the
five classes of lowest F1 and the five most frequent confusions. `--json` prints everything instead
(`scoring.evaluate`): the metrics (with the F1 of `--positive_label`), every class's precision, recall, F1 and
support (null for a class absent from both), and the confusion matrix (rows gold, columns predicted); `--output`
also writes that JSON to a file. Labels must be among the model's classes; one that is not is an error naming
its line.
"""

from __future__ import annotations

import json

from absl import app, flags

from bilstm_kd import cli

flags.DEFINE_string("model", None, "A run directory, its export/ directory, a SavedModel or a .tflite file.")
flags.DEFINE_enum("kind", "auto", ("auto", "saved_model", "tflite"), "Which export to use (auto: the SavedModel).")
flags.DEFINE_string("data", None, "A labelled CSV, TSV, JSON Lines or Parquet file.")
flags.DEFINE_string("text_column", "text", "The text column.")
flags.DEFINE_string("text_pair_column", "", "The second text column of a pair task.")
flags.DEFINE_string("label_column", "label", "The label column.")
flags.DEFINE_string("positive_label", "", "Also report the binary F1 of this class.")
flags.DEFINE_bool("json", False, "Print every metric, per-class score and the confusion matrix as JSON.")
flags.DEFINE_string("output", "", "Also write the full JSON to this file.")
cli.define_table_flags()
flags.mark_flags_as_required(["model", "data"])
FLAGS = flags.FLAGS

HELP = cli.CommandHelp(
    command="evaluate",
    usage="--model RUN --data FILE [--text_column NAME] [--label_column NAME] [--json]",
    summary="Scores a trained student on a labelled file: accuracy, macro-F1, its worst classes and confusions.",
    first=("model", "data", "text_column", "label_column", "json", "output"),
    groups=(("Reading the data file", cli.TABLE_FLAGS),),
)


def main(argv: list[str]) -> int:
    def command() -> int:
        with cli.quiet_tensorflow():
            from bilstm_kd import scoring
            from bilstm_kd.classifier import load_classifier
            from bilstm_kd.data.readers import read_examples

            classifier = load_classifier(FLAGS.model, FLAGS.kind)
            if FLAGS.positive_label and FLAGS.positive_label not in classifier.label_names:
                raise app.UsageError(
                    f"--positive_label={FLAGS.positive_label!r} is not a class of {FLAGS.model}: "
                    f"{', '.join(classifier.label_names)}"
                )
            if classifier.is_pair and not FLAGS.text_pair_column:
                raise app.UsageError(f"{FLAGS.model} classifies pairs: name the second text with --text_pair_column")
            text_columns = (FLAGS.text_column, FLAGS.text_pair_column) if classifier.is_pair else (FLAGS.text_column,)
            examples = read_examples(
                FLAGS.data, text_columns, FLAGS.label_column, classifier.label_names, cli.table_format_from_flags()
            )
            results = scoring.evaluate(classifier, examples, FLAGS.positive_label)
        text = json.dumps(results, indent=2)
        print(text if FLAGS.json else scoring.summary(results))
        if FLAGS.output:
            with open(FLAGS.output, "w", encoding="utf-8") as file:
                file.write(text + "\n")
        return 0

    return cli.run_command(argv, command)


def run(argv: list[str] | None = None) -> None:
    """Parses the flags in `argv` (default: the command line) and evaluates; exits with the command's status."""
    app.run(main, argv, flags_parser=cli.flags_parser(HELP))


if __name__ == "__main__":
    run()
