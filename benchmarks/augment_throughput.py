"""Transfer-set generation speed on a GLUE single-sentence training set (SST-2 by default).

Measures spaCy POS tagging (sentences per second, uncached) and building the whole transfer set with the
tags already cached (augmented sentences generated per second, deduplication and TFRecord writing
included), then prints one JSON object with the figures, the transfer set's statistics and a handful of
augmented examples.

    flock /tmp/bilstm_kd_heavy.lock python benchmarks/augment_throughput.py \
        --train_tsv /work/shared/data/glue/SST-2/train.tsv --workdir /tmp/augment_benchmark
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time

import numpy as np
import tensorflow as tf

from bilstm_kd.text import pos, vocab
from bilstm_kd.transfer import augment
from bilstm_kd.transfer.augment import Augmentation
from bilstm_kd.transfer.build import build_transfer_set


class _Split:
    def __init__(self, texts: tuple[np.ndarray, ...], labels: np.ndarray):
        self.texts = texts
        self.labels = labels


def read_single_sentence_tsv(path: str, limit: int) -> _Split:
    """`sentence<TAB>label` rows with a header, as in GLUE SST-2."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    if limit:
        rows = rows[:limit]
    texts = np.array([row["sentence"] for row in rows], dtype=object)
    return _Split((texts,), np.array([int(row["label"]) for row in rows], dtype=np.int32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train_tsv", default="/work/shared/data/glue/SST-2/train.tsv")
    parser.add_argument("--workdir", default="/tmp/augment_benchmark")
    parser.add_argument("--limit", type=int, default=0, help="Use the first N sentences only (0: all).")
    parser.add_argument("--tag_sample", type=int, default=5000, help="Sentences tagged uncached for the tag speed.")
    parser.add_argument("--n_iter", type=int, default=20)
    parser.add_argument("--p_pos", type=float, default=0.1)
    parser.add_argument("--augment_shards", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pos_model", default=pos.DEFAULT_POS_MODEL)
    args = parser.parse_args()

    train = read_single_sentence_tsv(args.train_tsv, args.limit)
    sentences = train.texts[0].tolist()
    config = Augmentation(n_iter=args.n_iter, p_pos=args.p_pos, pos_model=args.pos_model)
    pos_cache_dir = os.path.join(args.workdir, "pos")
    figures: dict = {"sentences": len(sentences), "n_iter": args.n_iter, "cpu_count": os.cpu_count()}

    if args.p_pos > 0:
        sample_tokens = pos.tokenize_texts(sentences[: args.tag_sample])
        pos.load_tagger(args.pos_model)  # pipeline load time is not tagging time
        started = time.perf_counter()
        pos.tag_tokens(sample_tokens, args.pos_model)
        figures["pos_tagging_sentences_per_second"] = round(len(sample_tokens) / (time.perf_counter() - started), 1)
        started = time.perf_counter()
        pos.pos_tags(sentences, args.pos_model, pos_cache_dir)  # fills the cache (a hit when it exists)
        figures["pos_tags_all_seconds"] = round(time.perf_counter() - started, 1)

    transfer_dir = os.path.join(args.workdir, "augmented")
    shutil.rmtree(transfer_dir, ignore_errors=True)
    started = time.perf_counter()
    store = build_transfer_set(train, "sst2", config, args.seed, transfer_dir, args.augment_shards, pos_cache_dir)
    seconds = time.perf_counter() - started
    statistics = store.manifest["statistics"]
    figures.update(
        transfer_seconds=round(seconds, 1),
        generated_per_second=round(statistics["generated"] / seconds, 1),
        transfer_statistics=statistics,
    )

    # A handful of augmentations of the first sentences, side by side with their originals.
    table = None
    tag_ids = None
    if args.p_pos > 0:
        tokens = pos.tokenize_texts(sentences)
        tags = pos.pos_tags(sentences, args.pos_model, pos_cache_dir)
        table = augment.ReplacementTable.from_tagged(tokens, tags)
        tag_ids = table.tag_ids(tags[:4])
    first_tokens = vocab.tokenize(tf.constant(sentences[:4]))
    examples = []
    for round_index in range(3):
        augmented = augment.augment_batch(
            first_tokens, tag_ids, tf.range(4), tf.fill([4], round_index), config, args.seed, table
        )
        for original, text in zip(sentences[:4], augment.join_tokens(augmented).numpy().tolist()):
            examples.append({"round": round_index, "original": original.strip(), "augmented": text.decode("utf-8")})
    figures["examples"] = examples
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
