"""On-device speed and size: the paper-size SST-2 student in MediaPipe's TextClassifier, and what folding costs.

1. `mediapipe`: `student_mediapipe.tflite` (float32, float16, dynamic-range int8) with the SST-2 regex
   vocabulary, the fixed length the export stage picks (99th percentile of train + dev words), timed in
   MediaPipe's `classify()` on a real 20-word SST-2 dev sentence, and on the one-thread LiteRT interpreter.
   The process is pinned to one core while timing (MediaPipe has no thread option for text).
2. `length`: the cost of the fixed length: the float32 file at 16 to 64 words, the same sentence.
3. `forms`: the alternatives for the encoder at the fixed length, same sentence: unfolded (the input
   projection at every position), and TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM (it runs only the
   sentence's words, but keeps its state between calls unless a reset step is added, and cannot fold).
4. `folding`: per vocabulary size, the ids TFLite file (`student.tflite`) folded and unfolded: size, and
   latency for 20 words (one thread); and the folded vs unfolded Keras student at batch 512 (both cores).

Weights are random (speed does not depend on them).

    python benchmarks/mobile.py --data_dir ../shared/data/glue/SST-2 > mobile.json

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.data.readers import read_examples
from bilstm_kd.data.tasks import get_preset, get_task
from bilstm_kd.distill.evaluation import traced_forward
from bilstm_kd.export import mediapipe
from bilstm_kd.export.tflite import export_tflite
from bilstm_kd.report import speed
from bilstm_kd.student.folding import fold_student, word_vectors
from bilstm_kd.student.models import build_student
from bilstm_kd.text.vocab import RESERVED, Vocabulary, WordTokenizer, rejoin_clitics, tokenize

WORDS = 20


def percentiles(call, runs: int, warmup: int = 50) -> dict:
    for _ in range(warmup):
        call()
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    latencies = np.array(latencies) * 1000
    return {"p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)), "runs": runs}


def mediapipe_latency(path: str, sentence: str, runs: int) -> dict:
    from mediapipe.tasks.python import text
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = text.TextClassifierOptions(base_options=BaseOptions(model_asset_path=path))
    with text.TextClassifier.create_from_options(options) as classifier:
        return percentiles(lambda: classifier.classify(sentence), runs)


def interpreter_latency(path: str, ids: np.ndarray, runs: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    output = interpreter.get_output_details()[0]["index"]

    def call():
        interpreter.set_tensor(detail["index"], ids)
        interpreter.invoke()
        interpreter.get_tensor(output)

    return percentiles(call, runs)


def fused_lstm_file(student, length: int, path: str) -> str:
    """The rejected form: each direction one fused UNIDIRECTIONAL_SEQUENCE_LSTM over the sentence's words only.

    The converter fuses a function marked the way Keras 2 marked its LSTM (`api_implements`); the op keeps
    its final state in a variable tensor that the next call starts from, so a first step with an extra
    input feature shuts the input and forget gates (state back to zero) before the words.
    """
    units, vectors_size = student.lstm_units, student.embedding.output_dim

    def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        def step(carry, x):
            hidden, cell = carry
            gates = tf.matmul(x, kernel) + tf.matmul(hidden, recurrent_kernel) + bias
            i, f, c, o = tf.split(gates, 4, axis=1)
            cell = tf.sigmoid(f) * cell + tf.sigmoid(i) * tf.tanh(c)
            return tf.sigmoid(o) * tf.tanh(cell), cell

        hs, cs = tf.scan(step, tf.transpose(inputs, [1, 0, 2]), initializer=(init_h, init_c))
        return hs[-1], tf.transpose(hs, [1, 0, 2]), hs[-1], cs[-1], tf.constant(0.0)

    fused = tf.function(
        standard_lstm,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": False,
        },
    )
    kernel, bias = np.asarray(student.encoder.kernel), np.asarray(student.encoder.bias)
    reset = np.zeros((1, 4 * units), "float32")
    reset[0, : 2 * units] = -1e4
    kernels = [tf.constant(np.concatenate([kernel[:, d * 4 * units : (d + 1) * 4 * units], reset])) for d in (0, 1)]
    biases = [tf.constant(bias[d * 4 * units : (d + 1) * 4 * units]) for d in (0, 1)]
    recurrent = [tf.constant(np.asarray(student.encoder.recurrent_kernel)[d]) for d in (0, 1)]
    table = tf.constant(word_vectors(student))
    # The classifier as constants: freezing variables inlines functions, which would lose the LSTM's marking.
    hidden_kernel, hidden_bias, logits_kernel, logits_bias = (
        tf.constant(np.asarray(weight)) for weight in (*student.hidden.weights, *student.logits.weights)
    )

    class Fused(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, length], tf.int32)])
        def __call__(self, token_ids):
            count = tf.reduce_sum(tf.cast(token_ids != 0, tf.int32))
            words = tf.gather(table, token_ids[:, :count])
            words = tf.concat([tf.zeros([1, count, 1]), words], axis=-1)
            first = tf.concat([tf.ones([1, 1, 1]), tf.zeros([1, 1, vectors_size])], axis=-1)
            zeros = tf.zeros([1, units])
            states = [
                fused(tf.concat([first, sequence], 1), zeros, zeros, kernels[d], recurrent[d], biases[d])[0]
                for d, sequence in ((0, words), (1, tf.reverse(words, [1])))
            ]
            hidden = tf.nn.relu(tf.matmul(tf.concat(states, -1), hidden_kernel) + hidden_bias)
            return {"probabilities": tf.nn.softmax(tf.matmul(hidden, logits_kernel) + logits_bias)}

    module = Fused()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with open(path, "wb") as file:
        file.write(converter.convert())
    return path


def progress(results: dict) -> None:
    """The figures so far, on stderr: a failure in a later part loses none of them."""
    print(json.dumps(results), file=sys.stderr, flush=True)


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default="../shared/data/glue/SST-2", help="GLUE SST-2 directory")
    parser.add_argument("--runs", type=int, default=2000, help="timed classify() calls per file")
    parser.add_argument("--lengths", default="16,24,32,48,64", help="fixed lengths of the length sweep")
    parser.add_argument("--vocabulary_sizes", default="5000,14748,50000", help="vocabulary sizes of the fold sweep")
    parser.add_argument("--parts", default="mediapipe,length,forms,folding", help="comma-separated parts to run")
    args = parser.parse_args()
    parts = args.parts.split(",")

    task, preset = get_task("sst2"), get_preset("sst2")
    train, dev = (
        read_examples(
            os.path.join(args.data_dir, f"{split}.tsv"), preset.text_columns, preset.label_column, task.label_names
        )
        for split in ("train", "dev")
    )
    train_texts, dev_texts = ([rejoin_clitics(str(text)) for text in split.texts[0]] for split in (train, dev))
    vocabulary = Vocabulary.from_texts(train_texts, tokenizer="regex")
    counts = [len(row) for row in tokenize(train_texts + dev_texts, "regex").to_list()]
    length = mediapipe.mediapipe_length(counts, 64)
    dev_counts = [len(row) for row in tokenize(dev_texts, "regex").to_list()]
    sentence = dev_texts[dev_counts.index(WORDS)]
    keras.utils.set_random_seed(0)
    student = build_student(
        task, len(vocabulary), embedding_dim=300, multichannel=True, lstm_units=150, hidden_units=200
    )
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "vocabulary_size": len(vocabulary),
        "length": length,
        "dev_truncated": float(np.mean(np.array(dev_counts) > length)),
        "sentence": sentence,
        "words": WORDS,
    }

    with tempfile.TemporaryDirectory() as directory:

        def ids_for(fixed_length):
            tokenizer = WordTokenizer(vocabulary.tokens, fixed_length, pad_to_max_length=True, tokenizer="regex")
            return tokenizer(tf.constant([sentence])).numpy()

        def timed_file(name, fixed_length, **settings):
            path = os.path.join(directory, f"{name}.tflite")
            started = time.perf_counter()
            mediapipe.export_mediapipe(student, task, vocabulary, fixed_length, path, **settings)
            return {
                "length": fixed_length,
                "file_bytes": os.path.getsize(path),
                "export_seconds": round(time.perf_counter() - started, 1),
                "mediapipe_classify": mediapipe_latency(path, sentence, args.runs),
                "interpreter_1_thread": interpreter_latency(path, ids_for(fixed_length), args.runs),
            }

        if "folding" in parts:  # before pinning: batch 512 uses both cores
            results["folding"] = fold_sweep(
                task, [int(size) for size in args.vocabulary_sizes.split(",")], dev, directory
            )
        pin_to_one_core()
        if "mediapipe" in parts:
            results["mediapipe"] = {
                quantization: timed_file(f"mediapipe_{quantization}", length, quantization=quantization)
                for quantization in ("none", "float16", "dynamic_int8")
            }
            progress(results)
        if "length" in parts:
            results["length_sweep"] = {
                str(fixed): timed_file(f"length_{fixed}", fixed) for fixed in map(int, args.lengths.split(","))
            }
            progress(results)
        if "forms" in parts:
            results["forms"] = {"unrolled_unfolded": timed_file("unfolded", length, fold=False)}
            path = fused_lstm_file(student, length, os.path.join(directory, "fused.tflite"))
            results["forms"]["fused_sequence_lstm"] = {
                "length": length,
                "file_bytes": os.path.getsize(path),
                "interpreter_1_thread": interpreter_latency(path, ids_for(length), args.runs),
            }
    print(json.dumps(results, indent=2))


def fold_sweep(task, sizes: list[int], dev, directory: str) -> dict:
    """Folded vs unfolded at each vocabulary size: ids TFLite size and 20-word latency, batch-512 throughput."""
    sweep = {}
    rng = np.random.default_rng(0)
    lengths = [min(64, len(str(text).split())) for text in dev.texts[0]]
    for size in sizes:
        vocabulary = Vocabulary(RESERVED + tuple(f"w{index}" for index in range(size - len(RESERVED))))
        keras.utils.set_random_seed(0)
        student = build_student(task, size, embedding_dim=300, multichannel=True, lstm_units=150, hidden_units=200)
        ids = np.zeros([1, 64], np.int32)
        ids[0, :WORDS] = rng.integers(len(RESERVED), size, WORDS)
        batches = []
        for start in range(0, len(lengths), 512):
            chunk = lengths[start : start + 512]
            batch = np.zeros([len(chunk), max(chunk)], np.int32)
            for row, count in enumerate(chunk):
                batch[row, :count] = rng.integers(len(RESERVED), size, count)
            batches.append(batch)
        entry = {}
        for fold in (False, True):
            path = export_tflite(
                student, task, vocabulary, 64, os.path.join(directory, f"ids_{size}_{fold}.tflite"), fold=fold
            )
            model = fold_student(student) if fold else student
            entry["folded" if fold else "unfolded"] = {
                "tflite_bytes": os.path.getsize(path),
                "tflite_20_words_1_thread": interpreter_latency(path, ids, 500),
                "batch_512_examples_per_second": speed.throughput(traced_forward(model), batches, 3.0)[
                    "examples_per_second"
                ],
            }
            os.remove(path)
        sweep[str(size)] = entry
    return sweep


if __name__ == "__main__":
    main()
