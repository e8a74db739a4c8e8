"""One fine-tuning step and one inference pass of BERT-base-shaped teachers: keras-hub's `BertBackbone` against
this package's `MPNetBackbone`, with the same head, optimizer, batch and dtype policy (random weights and ids:
speed does not depend on them).

    python benchmarks/backbone_step.py [--batch_size 32] [--length 24] [--policy float32]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_hub
import numpy as np
import tensorflow as tf

from bilstm_kd.distribute.devices import describe
from bilstm_kd.teacher.fine_tuning import FineTuning, compile_teacher
from bilstm_kd.teacher.loading import load_tokenizer, text_classifier_preprocessor
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.teacher.mpnet import MPNetBackbone

# BERT-base (Devlin et al. 2019), the shape all-mpnet-base-v2 shares.
SHAPE = {"vocabulary_size": 30527, "num_layers": 12, "num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072}
BACKBONES = {"bert": keras_hub.models.BertBackbone, "mpnet": MPNetBackbone}


def time_backbone(name: str, policy: str, batch_size: int, length: int, steps: int) -> dict:
    backbone = BACKBONES[name](**SHAPE, max_sequence_length=512, dtype=policy)
    preprocessor = text_classifier_preprocessor(load_tokenizer("minilm"), 128)
    teacher = BertTeacher(backbone, preprocessor, num_classes=2, pooling="mean")
    compile_teacher(teacher, FineTuning(), total_steps=1000)
    rng = np.random.default_rng(0)
    inputs = {
        "token_ids": rng.integers(5, SHAPE["vocabulary_size"], (batch_size, length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
    }
    labels = rng.integers(0, 2, batch_size).astype("int32")
    batches = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
    teacher.fit(batches, steps_per_epoch=3, epochs=1, verbose=0)  # traces, warms up
    started = time.perf_counter()
    teacher.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    step_seconds = (time.perf_counter() - started) / steps
    forward = tf.function(lambda values: teacher(values, training=False))
    forward(inputs).numpy()
    started = time.perf_counter()
    for _ in range(steps):
        forward(inputs).numpy()
    inference_seconds = (time.perf_counter() - started) / steps
    return {
        "train_step_seconds": step_seconds,
        "train_examples_per_second": batch_size / step_seconds,
        "inference_sentences_per_second": batch_size / inference_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--length", type=int, default=24, help="word pieces per sentence")
    parser.add_argument("--policy", default="float32", help="a Keras dtype policy, e.g. mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    results = {"devices": describe(), "batch_size": args.batch_size, "length": args.length, "policy": args.policy}
    for name in BACKBONES:
        results[name] = time_backbone(name, args.policy, args.batch_size, args.length, args.steps)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
