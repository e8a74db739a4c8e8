"""The students' bucketed batches know how many they are (Keras shows a progress bar with a total)."""

import numpy as np
import pytest

from bilstm_kd.data.readers import Examples
from bilstm_kd.distill.batches import example_batches
from bilstm_kd.text.vocab import RESERVED, WordTokenizer

WORDS = ("good", "bad", "film", "plot", "very", ".")


@pytest.mark.parametrize("pair, shuffle", [(False, False), (False, True), (True, True)])
def test_bucketed_batches_have_their_exact_count(pair, shuffle):
    rng = np.random.default_rng(0)
    words = np.array(WORDS, dtype=object)
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(230)]
    columns = (np.array(texts, dtype=object),) * (2 if pair else 1)
    examples = Examples(columns, rng.integers(0, 2, size=230).astype(np.int32))
    tokenizer = WordTokenizer((*RESERVED, *WORDS), max_length=32)
    batches = example_batches(examples.to_dataset(), tokenizer, pair, batch_size=16, shuffle=shuffle, seed=1)
    counted = int(batches.cardinality())
    assert counted > 230 // 16  # partial batches of several buckets
    for _ in range(2):  # every epoch, reshuffled, has the announced count and every example once
        seen = [len(targets["label"]) for _, targets in batches]
        assert len(seen) == counted and sum(seen) == 230
