"""Speed on an accelerator (or the CPU): the teacher in float32 vs mixed precision and XLA, the student on
cuDNN vs `MaskedBiLSTM`, and inference of the paper-size student against BERT-base and BERT-large shapes.

Every figure is measured in this one process, side by side:

- `teacher_fine_tuning`: training examples/s of a BERT-base-shaped teacher (random weights, the offline
  MiniLM's vocabulary) at batch 32 on real sentences, float32 vs `--mixed_precision=auto` (`mixed_float16`
  with loss scaling on a GPU, `mixed_bfloat16` on a TPU or a bfloat16 CPU) vs mixed with XLA on bucketed
  lengths (`--teacher_jit_compile`).
- `teacher_labelling`: sentences/s of the same teacher labelling sentences the pipeline's way (length-sorted
  batches), in the same three settings, with the mixed logits' largest difference from float32 and the share
  of labels they agree on.
- `student_training`: examples/s of the paper-size SST-2 student (300-d multichannel vectors, 150 LSTM
  units, 200 ReLU units) trained by the `Distiller` at batch 50, on cuDNN (`--lstm_kernel=cudnn`; on a
  CPU that is Keras' generic LSTM loop) vs `MaskedBiLSTM`'s packed loop (`--lstm_kernel=masked`).
- `inference`: sentences/s at batch 512 and batch 1, data order, each batch padded to its longest (the paper's
  way, Tang et al. 2019: 434x BERT-large on a GPU): the student on both kernels and as exported (folded,
  `student.folding`), BERT-base and BERT-large shapes in float32 and mixed; `speedups` divides the fastest
  student by each BERT.

`--quick` runs tiny models and few steps (a minute on a CPU; the tests run it). On one GPU the full run is
meant to take under 8 minutes:

    python benchmarks/accelerator.py [--data_dir ../shared/data/glue/SST-2] [--parts teacher,student,inference]

Sentences come from `--data_dir` (a GLUE SST-2 directory) when it exists, else from the demo corpus shipped
with the package. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from bilstm_kd.data.readers import demo_file, read_examples
from bilstm_kd.data.tasks import get_preset, get_task
from bilstm_kd.distill.batches import transfer_batches
from bilstm_kd.distill.distiller import Distiller
from bilstm_kd.distill.training import make_optimizer
from bilstm_kd.distribute.devices import describe
from bilstm_kd.report import speed
from bilstm_kd.student.folding import fold_student
from bilstm_kd.student.models import build_student
from bilstm_kd.teacher.batches import training_dataset
from bilstm_kd.teacher.fine_tuning import FineTuning, compile_teacher
from bilstm_kd.teacher.inference import encode_texts, encoded_logits
from bilstm_kd.teacher.loading import load_tokenizer
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.teacher.precision import FLOAT32, length_buckets, precision_policy
from bilstm_kd.text.vocab import Vocabulary, WordTokenizer

# (layers, hidden, heads, feed-forward): BERT-base and BERT-large, and tiny stand-ins for --quick.
SHAPES = {**speed.BERT_SHAPES, "quick_base": (2, 64, 2, 128), "quick_large": (2, 128, 4, 256)}
# Paper-size student (Tang et al. 2019, SST-2), and a tiny one for --quick: (embedding, LSTM, ReLU units).
STUDENTS = {"paper": (300, 150, 200), "quick": (16, 8, 8)}
SEQUENCE_LENGTH = 128
PAPER_SPEEDUP = 434  # Tang et al. 2019, BiLSTM vs BERT-large inference on a GPU


def read_sentences(data_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Training sentences, their labels and dev sentences: SST-2 from `data_dir`, else the demo corpus."""
    task, preset = get_task("sst2"), get_preset("sst2")
    paths = [os.path.join(data_dir, f"{split}.tsv") for split in ("train", "dev")]
    source = data_dir
    if not all(os.path.exists(path) for path in paths):
        paths, source = [demo_file("train"), demo_file("dev")], "demo corpus"
    train, dev = (read_examples(path, preset.text_columns, preset.label_column, task.label_names) for path in paths)
    return train.texts[0], np.asarray(train.labels, np.int32), dev.texts[0], source


def bert_teacher(shape: str, tokenizer) -> BertTeacher:
    return speed.bert_with_shape(SHAPES[shape], tokenizer, SEQUENCE_LENGTH)


def paper_student(vocabulary_size: int, student_size: tuple[int, int, int], kernel: str):
    """The SST-2 student of `student_size` (embedding, LSTM, ReLU units) on `kernel`, seeded the same each time."""
    embedding_dim, lstm_units, hidden_units = student_size
    keras.utils.set_random_seed(0)
    return build_student(
        get_task("sst2"),
        vocabulary_size,
        embedding_dim=embedding_dim,
        lstm_units=lstm_units,
        hidden_units=hidden_units,
        lstm_kernel=kernel,
    )


def settings(policy: str) -> dict[str, tuple[str, bool]]:
    """The teacher settings compared: name -> (dtype policy, XLA)."""
    return {"float32": (FLOAT32, False), "mixed": (policy, False), "mixed_xla": (policy, True)}


def fine_tuning_speed(teacher: BertTeacher, train, labels, policy: str, steps: int, batch_size: int = 32) -> dict:
    """Training examples/s per setting, after a warm-up that meets every shape the timed steps meet."""
    encoded = encode_texts(teacher.preprocessor, train)
    figures = {}
    for name, (dtype_policy, jit_compile) in settings(policy).items():
        model = teacher.with_precision(dtype_policy)
        compile_teacher(model, FineTuning(jit_compile=jit_compile), total_steps=10 * steps)
        buckets = length_buckets(model.sequence_length) if jit_compile else None
        # The same `steps` batches twice: the first pass compiles (XLA: once per bucket), the second is timed.
        batches = training_dataset(encoded, labels, batch_size, seed=0, buckets=buckets).take(steps).cache().repeat()
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        started = time.perf_counter()
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        figures[name] = {
            "examples_per_second": steps * batch_size / (time.perf_counter() - started),
            "policy": dtype_policy,
            "xla": jit_compile,
            "loss_scaled": isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer),
        }
        del model
    return figures


def labelling_speed(teacher: BertTeacher, sentences, policy: str, batch_size: int = 256) -> dict:
    """Sentences/s per setting (a warm-up pass first), and the mixed logits against float32."""
    encoded = encode_texts(teacher.preprocessor, sentences)
    figures, logits = {}, {}
    for name, (dtype_policy, jit_compile) in settings(policy).items():
        model = teacher if dtype_policy == FLOAT32 else teacher.with_precision(dtype_policy)
        encoded_logits(model, encoded, batch_size, jit_compile=jit_compile)  # traces / compiles
        started = time.perf_counter()
        logits[name] = encoded_logits(model, encoded, batch_size, jit_compile=jit_compile)
        figures[name] = {
            "sentences_per_second": len(sentences) / (time.perf_counter() - started),
            "policy": dtype_policy,
            "xla": jit_compile,
        }
    for name in ("mixed", "mixed_xla"):
        figures[name]["max_logit_difference_vs_float32"] = float(np.abs(logits[name] - logits["float32"]).max())
        figures[name]["label_agreement_vs_float32"] = float(
            np.mean(logits[name].argmax(axis=1) == logits["float32"].argmax(axis=1))
        )
    figures["sentences"] = len(sentences)
    figures["mean_word_pieces"] = float(encoded.lengths.mean())
    return figures


def student_training_speed(train, student_size: tuple[int, int, int], steps: int, batch_size: int = 50) -> dict:
    """Distiller training examples/s on cuDNN vs the packed loop, same batches, same starting weights."""
    vocabulary = Vocabulary.from_texts(train)
    tokenizer = WordTokenizer(vocabulary.tokens, 64)
    targets = np.random.default_rng(0).normal(size=(len(train), 2)).astype("float32")
    unlabelled = np.full(len(train), -1, np.int32)
    records = tf.data.Dataset.from_tensor_slices(
        {"text_a": train, "teacher_logits": targets, "label": unlabelled, "has_label": np.zeros_like(unlabelled)}
    )
    batches = transfer_batches(records, tokenizer, is_pair=False, batch_size=batch_size, seed=0).repeat()
    figures = {}
    for kernel in ("cudnn", "masked"):
        student = paper_student(len(vocabulary), student_size, kernel)
        distiller = Distiller(student, alpha=0.0, num_classes=2)
        distiller.compile(optimizer=make_optimizer())
        distiller.fit(batches, steps_per_epoch=max(steps // 5, 2), epochs=1, verbose=0)  # traces, warms up
        started = time.perf_counter()
        distiller.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        figures[kernel] = {"examples_per_second": steps * batch_size / (time.perf_counter() - started)}
    figures["cudnn_vs_masked"] = figures["cudnn"]["examples_per_second"] / figures["masked"]["examples_per_second"]
    figures["batch_size"] = batch_size
    return figures


def inference_speed(
    train, dev, tokenizer, student_size: tuple[int, int, int], shapes: tuple[str, str], policy: str, seconds: float
) -> dict:
    """Sentences/s at batch 512 and 1 of the student (both kernels, and exported) and of two BERT shapes."""
    vocabulary = Vocabulary.from_texts(train)
    student_tokenizer = WordTokenizer(vocabulary.tokens, 64)
    texts, single = (dev[:512],), (dev[:32],)
    student_batches = {
        "batch_512": speed.student_batches(student_tokenizer, texts, 512),
        "batch_1": speed.student_batches(student_tokenizer, single, 1),
    }
    figures = {}
    for kernel in ("cudnn", "masked"):
        student = paper_student(len(vocabulary), student_size, kernel)
        figures[f"student_{kernel}"] = speed.throughputs(student, student_batches, seconds)
    figures["student_exported"] = speed.throughputs(fold_student(student), student_batches, seconds)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    teacher_batches = {
        "batch_512": speed.teacher_batches(preprocessor, texts, 512),
        "batch_1": speed.teacher_batches(preprocessor, single, 1),
    }
    for shape in shapes:
        keras.utils.set_random_seed(0)
        teacher = bert_teacher(shape, tokenizer)
        name = shape.replace("quick_", "bert_")
        figures[f"{name}_float32"] = speed.throughputs(teacher, teacher_batches, seconds)
        if policy != FLOAT32:
            figures[f"{name}_{policy}"] = speed.throughputs(teacher.with_precision(policy), teacher_batches, seconds)
        del teacher
    speedups = {}
    for batch in ("batch_512", "batch_1"):
        students = ("student_cudnn", "student_masked", "student_exported")
        fastest = max(figures[name][batch]["examples_per_second"] for name in students)
        for name, result in figures.items():
            if name.startswith("bert_"):
                speedups[f"student_vs_{name}_{batch}"] = fastest / result[batch]["examples_per_second"]
    return {**figures, "speedups": speedups, "paper_speedup_vs_bert_large": PAPER_SPEEDUP}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default="../shared/data/glue/SST-2", help="GLUE SST-2 directory (else: demo)")
    parser.add_argument("--parts", default="teacher,student,inference", help="comma-separated parts to run")
    parser.add_argument("--quick", action="store_true", help="tiny models and few steps (CPU, tests)")
    parser.add_argument("--teacher_steps", type=int, default=40, help="timed fine-tuning batches per setting")
    parser.add_argument("--label_sentences", type=int, default=4096, help="sentences labelled per setting")
    parser.add_argument("--student_steps", type=int, default=200, help="timed student batches per kernel")
    parser.add_argument("--seconds", type=float, default=3.0, help="least seconds per inference measurement")
    args = parser.parse_args()
    if args.quick:
        args.teacher_steps, args.label_sentences, args.student_steps, args.seconds = 3, 64, 6, 0.05
    parts = set(args.parts.split(","))
    keras.utils.set_random_seed(0)

    train, labels, dev, source = read_sentences(args.data_dir)
    policy = precision_policy("auto")
    if policy == FLOAT32:
        policy = "mixed_bfloat16"  # no 16-bit hardware: still measured (emulated, slower), for the record
    tokenizer = load_tokenizer("minilm")  # BERT's uncased WordPiece vocabulary, offline
    base, large = ("quick_base", "quick_large") if args.quick else ("bert_base", "bert_large")
    student_size = STUDENTS["quick" if args.quick else "paper"]
    results: dict = {
        "devices": describe(),
        "quick": args.quick,
        "sentences": source,
        "mixed_policy": policy,
        "teacher_shape": base,
    }
    if "teacher" in parts:
        keras.utils.set_random_seed(0)
        teacher = bert_teacher(base, tokenizer)
        results["teacher_fine_tuning"] = progress(fine_tuning_speed(teacher, train, labels, policy, args.teacher_steps))
        sentences = np.resize(train, args.label_sentences)
        results["teacher_labelling"] = progress(labelling_speed(teacher, sentences, policy))
        del teacher
    if "student" in parts:
        results["student_training"] = progress(student_training_speed(train, student_size, args.student_steps))
    if "inference" in parts:
        inference = inference_speed(train, dev, tokenizer, student_size, (base, large), policy, args.seconds)
        results["inference"] = progress(inference)
    print(json.dumps(results, indent=2))


def progress(figures: dict) -> dict:
    """Echoes a part's figures to stderr as they come (a long run shows where it is)."""
    print(json.dumps(figures), file=sys.stderr, flush=True)
    return figures


if __name__ == "__main__":
    main()
