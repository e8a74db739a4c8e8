"""Score a trained student on a labelled file, with the metric code training uses.

    python -m bilstm_kd.evaluate --model runs/mine --data test.csv --text_column text --label_column label

Prints JSON: the task's metrics (accuracy; macro-F1 with more than two classes; F1 of `--positive_label`),
the per-class precision, recall and F1, and the confusion matrix (rows gold, columns predicted). Labels must
be among the model's classes; one that is not is an error naming its line.
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
flags.DEFINE_string("output", "", "Also write the JSON to this file.")
cli.define_table_flags()
flags.mark_flags_as_required(["model", "data"])
FLAGS = flags.FLAGS


def evaluate(classifier, examples, positive_label: str = "") -> dict:
    """The metrics, per-class scores and confusion matrix of `classifier` on labelled `examples`."""
    from bilstm_kd.data.tasks import Task, default_metrics

    names = classifier.label_names
    metrics = default_metrics(len(names), positive_label)
    task = Task("evaluate", names, classifier.is_pair, metrics, positive_label)
    predictions = classifier.predict(*(list(column) for column in examples.texts))
    return {
        "model": classifier.path,
        "data": examples.origin,
        "examples": len(examples),
        **task.evaluate_in_detail(examples.labels, predictions.label_ids),
        "classes": list(names),
    }


def main(argv: list[str]) -> int:
    def command() -> int:
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
        results = evaluate(classifier, examples, FLAGS.positive_label)
        text = json.dumps(results, indent=2)
        print(text)
        if FLAGS.output:
            with open(FLAGS.output, "w", encoding="utf-8") as file:
                file.write(text + "\n")
        return 0

    return cli.run_command(argv, command)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
