"""Teacher labelling throughput: length-bucketed batches against a naive fixed-length `predict`.

Loads the teacher (the offline MiniLM by default), samples sentences from a GLUE single-sentence training
set (SST-2), and measures in the same process:
  - this machine's fp32 matrix-multiply rate (square `tf.matmul`, best of several runs);
  - `teacher_logits`: tokenized without padding, batches of similar length (at most --batch_size
    sentences and --max_tokens word pieces), each padded to its longest;
  - the naive way: the keras-hub preprocessor padding every sentence to 128 word pieces, then
    `teacher.predict`, on a smaller sample (it is slow);
and prints one JSON object: sentences per second, the speed-up, the FLOP rate of each (FLOPs of the
word pieces actually computed, from `teacher_size`) as a fraction of the matmul rate, and the largest
logit difference between the two ways on the sentences both labelled.

    flock /tmp/bilstm_kd_heavy.lock python benchmarks/teacher_labelling.py \
        --train_tsv /work/shared/data/glue/SST-2/train.tsv --sample 4000
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import get_task
from bilstm_kd.teacher.inference import INFERENCE_TOKENS_PER_BATCH, encode_texts, encoded_logits
from bilstm_kd.teacher.loading import load_teacher
from bilstm_kd.teacher.model import teacher_size


def read_sentences(path: str) -> np.ndarray:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as file:
        return np.array([row["sentence"] for row in csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)])


def matmul_gflops(size: int = 1024, repeats: int = 20, trials: int = 5) -> float:
    """The best fp32 rate of `repeats` chained square matmuls, in GFLOP/s."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size]) / np.sqrt(size)

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, b)
        return x

    chain(a).numpy()
    best = float("inf")
    for _ in range(trials):
        started = time.perf_counter()
        chain(a).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 * repeats / best / 1e9


def flops_of_lengths(teacher, lengths: np.ndarray) -> float:
    unique, counts = np.unique(lengths, return_counts=True)
    return float(
        sum(teacher_size(teacher, int(length))["flops_per_example"] * count for length, count in zip(unique, counts))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train_tsv", default="/work/shared/data/glue/SST-2/train.tsv")
    parser.add_argument("--teacher", default="minilm")
    parser.add_argument("--sample", type=int, default=4000, help="Sentences labelled length-bucketed.")
    parser.add_argument("--naive_sample", type=int, default=512, help="Sentences labelled at fixed length 128.")
    parser.add_argument("--batch_size", type=int, default=256, help="Bucketed batch size (--label_batch_size).")
    parser.add_argument(
        "--max_tokens", type=int, default=INFERENCE_TOKENS_PER_BATCH, help="Bucketed word pieces per batch (0: no cap)."
    )
    parser.add_argument("--naive_batch_size", type=int, default=64)
    parser.add_argument("--naive_length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sentences = read_sentences(args.train_tsv)
    rng = np.random.default_rng(args.seed)
    sample = sentences[rng.choice(len(sentences), size=min(args.sample, len(sentences)), replace=False)]
    naive_sample = sample[: args.naive_sample]

    matmul_rate = matmul_gflops()
    teacher = load_teacher(args.teacher, get_task("sst2").num_classes, max_length=args.naive_length)

    # Warm-up: trace the forward pass once so neither side pays for it in the timing.
    encoded_logits(teacher, encode_texts(teacher.preprocessor, sample[:8]), args.batch_size, None, args.max_tokens)
    started = time.perf_counter()
    encoded = encode_texts(teacher.preprocessor, sample)
    encoded_seconds = time.perf_counter() - started
    bucketed_logits = encoded_logits(teacher, encoded, args.batch_size, None, args.max_tokens)
    bucketed_seconds = time.perf_counter() - started
    bucketed_flops = flops_of_lengths(teacher, encoded.lengths)

    def naive_inputs(texts):
        return {key: np.asarray(value) for key, value in teacher.preprocessor(tf.constant(texts)).items()}

    teacher.predict(naive_inputs(naive_sample[:8]), batch_size=args.naive_batch_size, verbose=0)
    started = time.perf_counter()
    naive_logits = teacher.predict(naive_inputs(naive_sample), batch_size=args.naive_batch_size, verbose=0)
    naive_seconds = time.perf_counter() - started
    naive_flops = teacher_size(teacher, args.naive_length)["flops_per_example"] * len(naive_sample)

    bucketed_rate = len(sample) / bucketed_seconds
    naive_rate = len(naive_sample) / naive_seconds
    results = {
        "teacher": args.teacher,
        "parameters": teacher_size(teacher)["parameters"],
        "sentences": len(sample),
        "mean_word_pieces": round(float(encoded.lengths.mean()), 2),
        "max_word_pieces": int(encoded.lengths.max()),
        "matmul_gflops": round(matmul_rate, 1),
        "bucketed": {
            "batch_size": args.batch_size,
            "max_tokens": args.max_tokens,
            "sentences_per_second": round(bucketed_rate, 1),
            "tokenization_seconds": round(encoded_seconds, 2),
            "seconds": round(bucketed_seconds, 2),
            "gflops_per_second": round(bucketed_flops / bucketed_seconds / 1e9, 1),
            "fraction_of_matmul_rate": round(bucketed_flops / bucketed_seconds / 1e9 / matmul_rate, 3),
        },
        "naive_fixed_length": {
            "sequence_length": args.naive_length,
            "batch_size": args.naive_batch_size,
            "sentences": len(naive_sample),
            "sentences_per_second": round(naive_rate, 1),
            "seconds": round(naive_seconds, 2),
            "gflops_per_second": round(naive_flops / naive_seconds / 1e9, 1),
            "fraction_of_matmul_rate": round(naive_flops / naive_seconds / 1e9 / matmul_rate, 3),
        },
        "speedup": round(bucketed_rate / naive_rate, 2),
        "max_abs_logit_difference": float(np.max(np.abs(bucketed_logits[: len(naive_sample)] - naive_logits))),
        "tensorflow_threads": {
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        },
        "keras": keras.__version__,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
