"""Student training throughput on the real SST-2 training sentences; prints one JSON object.

Two paper-size students (300-d multichannel embeddings -> 600-d input, 150 LSTM units per direction,
200 ReLU units, batch 50, AdaDelta, logit MSE against fixed teacher-like logits) are trained side by side,
in the same process, through the same `Distiller`:

- `student`: this package's `BiLSTMClassifier` (`MaskedBiLSTM`) fed by its input pipeline
  (`training.transfer_batches`: tokenized once, cached, length-bucketed batches padded to their longest).
- `plain`: `keras.layers.Bidirectional(keras.layers.LSTM(150))` on the same embeddings, every batch
  padded to one fixed length (the longest training sentence), with the padding masked (`mask_zero`) so
  that it computes the same function; `plain_unmasked` is the same model without the mask (faster, but
  its result depends on the padding).

All three use the package's optimizer (`make_optimizer`: `SparseAdadelta`, which writes only the embedding
rows a batch uses). `student_keras_adadelta` is `student` again with Keras' own AdaDelta, whose dense update
rewrites the whole embedding matrix each step, so its cost grows with the vocabulary: `--vocabulary_size`
pads the vocabulary with rows no sentence uses, as `--vocab_from_vectors` does in a real run (52,518 words
for `flags/sst2_cpu.cfg`).

Each model first trains `--warmup_steps` batches (graph tracing), then `--steps` timed batches.

    python benchmarks/student_throughput.py [--data /work/shared/data/glue/SST-2/train.tsv] [--steps 300]
        [--vocabulary_size 52518]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.distill.batches import transfer_batches
from bilstm_kd.distill.distiller import Distiller
from bilstm_kd.distill.training import make_optimizer
from bilstm_kd.student.layers import StudentEmbedding
from bilstm_kd.student.models import BiLSTMClassifier
from bilstm_kd.text.vocab import Vocabulary, WordTokenizer, token_ids

BATCH_SIZE = 50
EMBEDDING_DIM = 300
LSTM_UNITS = 150
HIDDEN_UNITS = 200
MAX_LENGTH = 64


def read_sentences(path: str) -> list[str]:
    if not os.path.exists(path):
        sys.exit(f"No SST-2 training file at {path}: pass --data <GLUE SST-2 train.tsv>")
    with open(path, encoding="utf-8") as file:
        return [row["sentence"] for row in csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)]


def teacher_like_logits(ids: np.ndarray, vocabulary_size: int, seed: int = 0) -> np.ndarray:
    """Logits of a fixed bag-of-words model: something learnable, standing in for the teacher."""
    word_scores = np.random.default_rng(seed).normal(size=vocabulary_size).astype("float32")
    word_scores[0] = 0.0
    score = word_scores[ids].sum(axis=1) / np.maximum((ids > 0).sum(axis=1), 1)
    return np.stack([-score, score], axis=1).astype("float32")


def plain_model(vocabulary_size: int, fixed_length: int, mask: bool) -> keras.Model:
    token_ids_input = keras.Input(shape=(fixed_length,), dtype="int32")
    static = keras.layers.Embedding(vocabulary_size, EMBEDDING_DIM, trainable=False, mask_zero=mask)
    dynamic = keras.layers.Embedding(vocabulary_size, EMBEDDING_DIM, mask_zero=mask)
    vectors = keras.layers.Concatenate()([static(token_ids_input), dynamic(token_ids_input)])
    encoding = keras.layers.Bidirectional(keras.layers.LSTM(LSTM_UNITS))(vectors)
    hidden = keras.layers.Dense(HIDDEN_UNITS, activation="relu")(encoding)
    model = keras.Model(token_ids_input, keras.layers.Dense(2)(hidden))
    model.num_classes = 2
    return model


def time_training(
    model: keras.Model, dataset: tf.data.Dataset, warmup_steps: int, steps: int, keras_adadelta: bool = False
) -> float:
    """Examples per second over `steps` batches, after `warmup_steps` batches of tracing and warm-up."""
    distiller = Distiller(model, alpha=0.0, num_classes=2)
    # The paper's AdaDelta (learning rate 1.0, rho 0.95), as Keras' dense optimizer or the package's sparse one.
    optimizer = (
        keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6) if keras_adadelta else make_optimizer()
    )
    distiller.compile(optimizer=optimizer)
    batches = dataset.repeat()
    distiller.fit(batches, steps_per_epoch=warmup_steps, epochs=1, verbose=0)
    start = time.perf_counter()
    distiller.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    return steps * BATCH_SIZE / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/work/shared/data/glue/SST-2/train.tsv")
    parser.add_argument("--steps", type=int, default=300, help="timed batches per model")
    parser.add_argument("--warmup_steps", type=int, default=60)
    parser.add_argument(
        "--vocabulary_size", type=int, default=0, help="pad the vocabulary to this many rows (0: training words)"
    )
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    sentences = read_sentences(args.data)
    vocabulary = Vocabulary.from_texts(sentences)
    ids = token_ids(vocabulary, sentences, MAX_LENGTH)
    lengths = (ids > 0).sum(axis=1)
    fixed_length = int(lengths.max())
    ids = np.pad(ids, ((0, 0), (0, fixed_length - ids.shape[1])))[:, :fixed_length]
    teacher_logits = teacher_like_logits(ids, len(vocabulary))
    labels = np.full(len(sentences), -1, "int32")
    targets = {"teacher_logits": teacher_logits, "label": labels, "has_label": np.zeros_like(labels)}

    records = tf.data.Dataset.from_tensor_slices({"text_a": sentences, **targets})
    tokenizer = WordTokenizer(vocabulary.tokens, MAX_LENGTH)
    bucketed = transfer_batches(records, tokenizer, is_pair=False, batch_size=BATCH_SIZE, seed=0)
    fixed = (
        tf.data.Dataset.from_tensor_slices((ids, targets))
        .shuffle(len(sentences), seed=0)
        .batch(BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )

    rows = max(args.vocabulary_size, len(vocabulary))

    def student_model():
        return BiLSTMClassifier(rows, EMBEDDING_DIM, 2, LSTM_UNITS, HIDDEN_UNITS, multichannel=True)

    student = student_model()
    figures = {"student_examples_per_s": time_training(student, bucketed, args.warmup_steps, args.steps)}
    figures["plain_examples_per_s"] = time_training(
        plain_model(rows, fixed_length, mask=True), fixed, args.warmup_steps, args.steps
    )
    figures["plain_unmasked_examples_per_s"] = time_training(
        plain_model(rows, fixed_length, mask=False), fixed, args.warmup_steps, args.steps
    )
    figures["student_keras_adadelta_examples_per_s"] = time_training(
        student_model(), bucketed, args.warmup_steps, args.steps, keras_adadelta=True
    )
    embedding_parameters = sum(
        int(np.prod(weight.shape))
        for layer in student.layers
        if isinstance(layer, StudentEmbedding)
        for weight in layer.weights
    )
    figures.update(
        {
            "ratio_vs_plain": figures["student_examples_per_s"] / figures["plain_examples_per_s"],
            "ratio_vs_plain_unmasked": figures["student_examples_per_s"] / figures["plain_unmasked_examples_per_s"],
            "ratio_sparse_vs_keras_adadelta": (
                figures["student_examples_per_s"] / figures["student_keras_adadelta_examples_per_s"]
            ),
            "batch_size": BATCH_SIZE,
            "timed_steps": args.steps,
            "warmup_steps": args.warmup_steps,
            "sentences": len(sentences),
            "training_words": len(vocabulary),
            "vocabulary_size": rows,
            "plain_fixed_length": fixed_length,
            "mean_sentence_length": float(lengths.mean()),
            "student_non_embedding_parameters": int(student.count_params()) - embedding_parameters,
            "cpu_threads": os.cpu_count(),
        }
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
