"""TF-IDF + logistic regression, the cheap text classifier users compare a distilled student with.

The features are those of the project's yardstick (DESIGN.md): word 1-2-grams and character 2-5-grams inside
word boundaries (`char_wb`), both TF-IDF with sublinear term frequency, into scikit-learn's multinomial
`LogisticRegression` with C=10. A sentence pair gets both sets for each of its texts, side by side.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

C = 10.0
MAX_ITERATIONS = 1000


def _text_features():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
            ("characters", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )


def linear_classifier(columns: int = 1, seed: int = 0):
    """An unfitted scikit-learn pipeline: the TF-IDF features of `columns` text columns (1, or 2 for pairs),
    then logistic regression. It takes a 2-D array of strings, one column per text."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if columns not in (1, 2):
        raise ValueError(f"`columns` must be 1 or 2, received columns={columns}")
    features = ColumnTransformer([(f"text_{column}", _text_features(), column) for column in range(columns)])
    return Pipeline(
        [("features", features), ("classifier", LogisticRegression(C=C, max_iter=MAX_ITERATIONS, random_state=seed))]
    )


def text_matrix(texts: Sequence[np.ndarray]) -> np.ndarray:
    """A split's text columns (`Examples.texts`) as the 2-D array of strings the pipeline takes."""
    return np.stack([np.asarray(column, dtype=object) for column in texts], axis=1)


def fit(texts: Sequence[np.ndarray], labels: np.ndarray, seed: int = 0):
    """The fitted classifier and the seconds fitting took."""
    model = linear_classifier(len(texts), seed)
    started = time.perf_counter()
    model.fit(text_matrix(texts), np.asarray(labels))
    return model, time.perf_counter() - started


def predict(model, texts: Sequence[np.ndarray]) -> np.ndarray:
    """Class ids for a split's text columns."""
    if not len(texts[0]):
        return np.zeros(0, np.int64)
    return np.asarray(model.predict(text_matrix(texts)))


def throughput(model, texts: Sequence[np.ndarray], one_at_a_time: int = 256) -> dict[str, float]:
    """Examples per second at batch 512 (all of `texts` in batches of 512) and at batch 1 (the first
    `one_at_a_time` examples, one call each): the keys the report uses for every model."""
    matrix = text_matrix(texts)
    started = time.perf_counter()
    for start in range(0, len(matrix), 512):
        model.predict(matrix[start : start + 512])
    batched = len(matrix) / max(time.perf_counter() - started, 1e-9)
    single = matrix[:one_at_a_time]
    started = time.perf_counter()
    for row in single:
        model.predict(row[None])
    return {"batch_512": batched, "batch_1": len(single) / max(time.perf_counter() - started, 1e-9)}
