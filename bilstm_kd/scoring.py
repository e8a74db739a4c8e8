"""A trained classifier's scores on labelled data: all of them (`bilstm-kd evaluate --json`) and the short table
`bilstm-kd evaluate` prints.

    results = scoring.evaluate(load_classifier("runs/mine"), read_examples("test.csv", ...))
    print(scoring.summary(results))

Macro-F1 is the mean F1 of the classes present in the gold labels or the predictions (`data.tasks.scores`): a
class absent from both has no F1 (null), rather than a 0 that would pull the mean down for classes the file
does not hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bilstm_kd.report.classes import confused_pairs, worst_first

MACRO_F1_OVER = "the classes present in the gold labels or the predictions"


def evaluate(classifier, examples, positive_label: str = "") -> dict[str, Any]:
    """Accuracy, macro-F1 (and the F1 of `positive_label`), per-class precision, recall, F1 and support, and the
    confusion matrix (rows gold, columns predicted) of `classifier` on labelled `examples`."""
    from bilstm_kd.data.tasks import Task

    names = classifier.label_names
    metrics = ("accuracy", "macro_f1", "f1") if positive_label else ("accuracy", "macro_f1")
    task = Task("evaluate", names, classifier.is_pair, metrics, positive_label)
    predictions = classifier.predict(*(list(column) for column in examples.texts))
    results = task.evaluate_in_detail(examples.labels, predictions.label_ids)
    confusion = np.asarray(results["confusion"])
    present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    absent = [name for name, occurs in zip(names, present) if not occurs]
    for name in absent:
        results["per_class"][name] = {"precision": None, "recall": None, "f1": None, "support": 0}
    return {
        "model": classifier.path,
        "data": examples.origin,
        "examples": len(examples),
        **{name: results[name] for name in metrics},
        "positive_label": positive_label or None,
        "macro_f1_over": f"{MACRO_F1_OVER}: {int(present.sum())} of {len(names)}",
        "absent_classes": absent,
        "per_class": results["per_class"],
        "confusion": results["confusion"],
        "classes": list(names),
    }


def summary(results: dict[str, Any], rows: int = 5) -> str:
    """`evaluate`'s results as a short table: accuracy, macro-F1, the `rows` classes of lowest F1 and the `rows`
    most frequent confusions."""
    names = results["classes"]
    lines = [f"{results['model']} on {results['data']}: {results['examples']:,} examples, {len(names)} classes", ""]
    lines.append(f"  accuracy   {_percent(results['accuracy'])}%")
    lines.append(f"  macro-F1   {_percent(results['macro_f1'])}%  over {results['macro_f1_over']}")
    if results.get("positive_label"):
        lines.append(f"  F1 of {results['positive_label']!r}: {_percent(results['f1'])}%")

    per_class = results["per_class"]
    worst = [name for name in worst_first(per_class) if per_class[name]["f1"] is not None][:rows]
    confused = confused_pairs(results["confusion"], names, rows)
    pairs = [f"{_clip(pair['gold'])} -> {_clip(pair['predicted'])}" for pair in confused]
    width = max([len(_clip(name)) for name in worst] + [len(pair) for pair in pairs] + [28])

    lines += ["", f"{'Worst classes by F1 (%)':<{width + 2}}      F1  precision  recall  support"]
    for name in worst:
        scores = per_class[name]
        lines.append(
            f"  {_clip(name):<{width}}  {_percent(scores['f1']):>6}  {_percent(scores['precision']):>9}  "
            f"{_percent(scores['recall']):>6}  {scores['support']:>7,}"
        )
    if confused:
        lines += ["", f"{'Most confused (gold -> predicted)':<{width + 2}}   count"]
        lines += [f"  {pair:<{width}}  {cell['count']:>6,}" for pair, cell in zip(pairs, confused)]
    else:
        lines += ["", "No confusions: every example got its gold label."]
    lines += ["", "--json prints every class's scores and the confusion matrix."]
    return "\n".join(lines)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _clip(name: str, most: int = 40) -> str:
    return name if len(name) <= most else name[: most - 1] + "…"
