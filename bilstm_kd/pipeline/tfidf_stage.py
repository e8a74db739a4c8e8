"""The TF-IDF + logistic-regression stage: the classifier a user would otherwise train in a minute, fitted on the
student's own training split and scored on the same dev and test sets, so the report can set the two side by
side (`baselines.linear`)."""

from __future__ import annotations

import os
from typing import Any

from bilstm_kd import cache
from bilstm_kd.pipeline.context import Run

MODEL_FILE = "model.joblib"


def depends_on(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    from bilstm_kd.baselines import linear

    return {
        "data": run.inputs.data_fingerprint,
        "test": {split: cache.examples_fingerprint(examples) for split, examples in run.inputs.test.items()},
        "model": {"C": linear.C, "words": [1, 2], "characters": [2, 5]},
        "seed": run.config.seed,
    }


def train(run: Run, results: dict[str, Any]) -> dict[str, Any]:
    import joblib

    from bilstm_kd.baselines import linear

    train_examples = run.inputs.train
    run.log(f"[tfidf] fitting TF-IDF + logistic regression on {len(train_examples):,} examples")
    model, seconds = linear.fit(train_examples.texts, train_examples.labels, seed=run.config.seed)
    scores: dict[str, dict[str, Any]] = {}
    for kind, splits in (("dev", run.inputs.dev), ("test", run.inputs.test)):
        for split, examples in splits.items():
            scores.setdefault(kind, {})[split] = run.task.evaluate(
                examples.labels, linear.predict(model, examples.texts)
            )
    os.makedirs(run.paths.tfidf, exist_ok=True)
    path = os.path.join(run.paths.tfidf, MODEL_FILE)
    joblib.dump(model, path)
    timed = tuple(column[:2048] for column in run.first_dev.texts)
    outputs = {
        **scores,
        "train_seconds": round(seconds, 1),
        "file_bytes": os.path.getsize(path),
        "throughput": linear.throughput(model, timed),
        "wrote": path,
    }
    run.log(f"[tfidf] fitted in {seconds:.1f} s; dev {scores['dev']}")
    return outputs
