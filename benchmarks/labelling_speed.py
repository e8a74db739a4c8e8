"""Labelling throughput of a teacher: the plain float32 pass against faster settings, side by side, with the labels
and logits each gives against the plain pass.

The sentences are a random sample of a transfer set (`--transfer_dir`, a run's `transfer/augmented` store, with
its `[MASK]`s and n-grams; pairs when it holds sentence pairs), or of the SST-2 training sentences without
one. Every setting labels the same sentences the pipeline's way (`inference.encoded_logits`: sorted by length,
batches of at most `--batch_size` sentences and `max_tokens` padded word pieces, each padded to its longest):

- `plain`: float32, `max_tokens` 2,048 (the package's default, tuned for MiniLM);
- `float32_<N>`, `bfloat16_<N>`: float32 and `mixed_bfloat16` (`--mixed_precision`) at other token budgets;
- `int8_<N>`: the TFLite copy with int8 weights (`--label_precision=dynamic_int8`) alone, with what checking
  would give at a few margins (`if_checked`: the share relabelled, the labels' agreement after);
- `int8checked`: labelling as the pipeline does with `dynamic_int8`: the TFLite copy at 1,024 word pieces a
  batch, then the float32 teacher for the examples it labels with less than `--check_margin` (timed too).

Each setting runs once untimed (tracing) and once timed. The teacher is `--teacher_dir` (a fine-tuned teacher's
directory, so that the agreement is that of real labels) or the pretrained `--teacher` with a random head.

    python benchmarks/labelling_speed.py --teacher mpnet --teacher_dir runs/sst2_mpnet/teacher \
        --transfer_dir runs/sst2_mpnet/transfer/augmented --sample 4000

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from bilstm_kd.data.tasks import get_task
from bilstm_kd.distribute.devices import describe
from bilstm_kd.teacher.inference import INFERENCE_TOKENS_PER_BATCH, checked_logits, encode_texts, encoded_logits
from bilstm_kd.teacher.lite import LiteTeacher, doubtful_examples
from bilstm_kd.teacher.loading import load_teacher
from bilstm_kd.teacher.saving import load_fine_tuned_teacher
from bilstm_kd.transfer import records
from bilstm_kd.transfer.shards import ShardedRecords


def read_tsv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The `sentence` and `label` columns of a GLUE SST-2 file."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    return np.array([row["sentence"] for row in rows], dtype=object), np.array([int(row["label"]) for row in rows])


def read_sentences(transfer_dir: str, train_tsv: str) -> tuple[list[np.ndarray], str]:
    """The text columns of a transfer set (`text_a`, and `text_b` if it holds pairs), or the SST-2 training set."""
    if transfer_dir:
        store = ShardedRecords.open_existing(transfer_dir)
        first = next(iter(store.dataset().take(1))).numpy()
        is_pair = "text_b" in tf.train.Example.FromString(first).features.feature
        parsed = records.parse_records(tf.data.TFRecordDataset(store.paths()), is_pair=is_pair).batch(8192)
        batches = list(parsed.as_numpy_iterator())
        columns = ["text_a", "text_b"] if is_pair else ["text_a"]
        texts = [[text.decode("utf-8") for batch in batches for text in batch[column]] for column in columns]
        return [np.array(column, dtype=object) for column in texts], transfer_dir
    return [read_tsv(train_tsv)[0]], train_tsv


def checking_by_margin(int8_logits: np.ndarray, plain_logits: np.ndarray) -> dict[str, dict[str, float]]:
    """For a few margins: the share of examples the pipeline would relabel, and the labels' agreement after."""
    table = {}
    for margin in (0.25, 0.5, 1.0, 2.0):
        doubtful = doubtful_examples(int8_logits, margin)
        checked = int8_logits.copy()
        checked[doubtful] = plain_logits[doubtful]
        table[str(margin)] = {
            "relabelled_fraction": len(doubtful) / len(int8_logits),
            "label_agreement_vs_plain": float(np.mean(checked.argmax(axis=1) == plain_logits.argmax(axis=1))),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="mpnet", help="a --teacher value (with a random head)")
    parser.add_argument("--teacher_dir", default="", help="a fine-tuned teacher's directory (overrides --teacher)")
    parser.add_argument("--transfer_dir", default="", help="a run's transfer/augmented store")
    parser.add_argument("--train_tsv", default="../shared/data/glue/SST-2/train.tsv")
    parser.add_argument("--sample", type=int, default=4000)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--settings", default="plain,bfloat16_2048,bfloat16_4096,int8_1024,int8_2048,int8checked")
    parser.add_argument("--check_margin", type=float, default=1.0, help="as --label_check_margin")
    parser.add_argument("--dev_tsv", default="", help="also score each setting's labels on this SST-2 dev file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    columns, source = read_sentences(args.transfer_dir, args.train_tsv)
    if args.dev_tsv and len(columns) == 2:
        raise SystemExit("--dev_tsv reads an SST-2 dev file; leave it out for a transfer set of pairs")
    count = len(columns[0])
    chosen = np.random.default_rng(args.seed).choice(count, min(args.sample, count), False)
    if args.teacher_dir:
        teacher = load_fine_tuned_teacher(args.teacher_dir)
    else:
        teacher = load_teacher(args.teacher, get_task("sst2").num_classes, pooling="mean")
    encoded = encode_texts(teacher.preprocessor, *[column[chosen] for column in columns])
    results: dict = {
        "devices": describe(),
        "teacher": args.teacher_dir or args.teacher,
        "sentences": {"source": source, "count": len(chosen), "mean_word_pieces": float(encoded.lengths.mean())},
    }
    dev = None
    if args.dev_tsv:
        dev_sentences, dev_labels = read_tsv(args.dev_tsv)
        dev = encode_texts(teacher.preprocessor, dev_sentences), dev_labels
    logits: dict[str, np.ndarray] = {}
    lite: list[LiteTeacher] = []  # converted once, when a setting first needs it

    def labeller(name: str):
        """The setting `name` as a function of encoded texts returning their logits and (int8checked) the examples
        float32 relabelled."""
        kind, _, budget = name.partition("_") if name != "plain" else ("float32", "", str(INFERENCE_TOKENS_PER_BATCH))
        if kind.startswith("int8") and not lite:
            started = time.perf_counter()
            lite.append(LiteTeacher(teacher))
            results["int8_conversion_seconds"] = time.perf_counter() - started
        if kind == "int8checked":
            return lambda encoded: checked_logits(lite[0], teacher, encoded, args.check_margin, args.batch_size)
        if kind == "int8":
            model = lite[0]
        else:
            policy = {"float32": "float32", "bfloat16": "mixed_bfloat16"}[kind]
            model = teacher if policy == "float32" else teacher.with_precision(policy)
        return lambda encoded: (encoded_logits(model, encoded, args.batch_size, max_tokens=int(budget)), None)

    for name in args.settings.split(","):
        label = labeller(name)
        label(encoded)  # traces (and warms) every shape it meets
        started = time.perf_counter()
        logits[name], relabelled = label(encoded)
        seconds = time.perf_counter() - started
        results[name] = {"sentences_per_second": len(chosen) / seconds}
        if dev is not None:
            results[name]["dev_accuracy"] = float(np.mean(label(dev[0])[0].argmax(axis=1) == dev[1]))
        if relabelled is not None:
            results[name].update(check_margin=args.check_margin, relabelled_by_float32=len(relabelled))
        if name != "plain" and "plain" in logits:
            plain_rate = results["plain"]["sentences_per_second"]
            results[name]["speedup_vs_plain"] = results[name]["sentences_per_second"] / plain_rate
            results[name]["label_agreement_vs_plain"] = float(
                np.mean(logits[name].argmax(axis=1) == logits["plain"].argmax(axis=1))
            )
            difference = np.abs(logits[name] - logits["plain"])
            results[name]["max_logit_difference_vs_plain"] = float(difference.max())
            results[name]["mean_logit_difference_vs_plain"] = float(difference.mean())
            results[name]["p99_logit_difference_vs_plain"] = float(np.percentile(difference, 99))
            if name.startswith("int8_"):
                results[name]["if_checked"] = checking_by_margin(logits[name], logits["plain"])
        print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
