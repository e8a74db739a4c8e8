"""Inference speed, side by side in one process: the paper-size BiLSTM student against BERT teachers.

Models: the SST-2 student of Tang et al. 2019 (300-d multichannel embeddings, 150 LSTM units per direction,
200 ReLU units), the offline all-MiniLM-L6-v2 teacher, and keras-hub BERT backbones with the exact shapes
of BERT-base and BERT-large (random weights: speed does not depend on them). Each model reads the SST-2
dev sentences in data order, batches padded to their longest, at batch 512 (the paper's setting) and at
batch 1. The student is timed as trained (`student`) and as exported (`student_exported`: word vectors
folded into the input projection, `student.folding`, which `--fold_embeddings=auto` does at this size);
the speed-ups are the exported student's. Then the student's TFLite export, folded and not, runs a 20-word
sentence on the plain LiteRT interpreter many times for single-sentence latency percentiles.

    python benchmarks/speed.py --data_dir ../shared/data/glue/SST-2 > speed.json

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from bilstm_kd.data.readers import read_examples
from bilstm_kd.data.tasks import get_preset, get_task
from bilstm_kd.export.tflite import export_tflite
from bilstm_kd.report import speed
from bilstm_kd.student.folding import fold_student, folded_bytes
from bilstm_kd.student.models import build_student
from bilstm_kd.teacher.loading import load_backbone_and_tokenizer, load_teacher
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.text.vocab import Vocabulary, WordTokenizer


def time_teacher(teacher: BertTeacher, texts: tuple, batch1_texts: tuple, seconds: float) -> dict:
    embedding = int(np.prod(teacher.backbone.token_embedding.embeddings.shape))
    batches = {
        "batch_512": speed.teacher_batches(teacher.preprocessor, texts, 512),
        "batch_1": speed.teacher_batches(teacher.preprocessor, batch1_texts, 1),
    }
    return {"parameters": speed.parameter_counts(teacher, embedding), **speed.throughputs(teacher, batches, seconds)}


def tflite_latency(student, task, vocabulary, max_length: int, runs: int, fold: bool) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    with tempfile.TemporaryDirectory() as directory:
        path = export_tflite(
            student, task, vocabulary, max_length, os.path.join(directory, "student.tflite"), fold=fold
        )
        size = os.path.getsize(path)
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        (input_detail,) = interpreter.get_input_details()
        output_index = interpreter.get_output_details()[0]["index"]
        # A 20-word sentence of real words, padded to the model's fixed length.
        ids = np.zeros([1, max_length], np.int32)
        ids[0, :20] = np.arange(3, 23)
        interpreter.resize_tensor_input(input_detail["index"], [1, max_length])
        interpreter.allocate_tensors()
        latencies = []
        for _ in range(runs + 20):
            started = time.perf_counter()
            interpreter.set_tensor(input_detail["index"], ids)
            interpreter.invoke()
            interpreter.get_tensor(output_index)
            latencies.append(time.perf_counter() - started)
        latencies = np.array(latencies[20:]) * 1000
    return {
        "folded": fold,
        "max_length": max_length,
        "words": 20,
        "runs": runs,
        "threads": 1,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "file_bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default="../shared/data/glue/SST-2", help="GLUE SST-2 directory")
    parser.add_argument("--examples", type=int, default=872, help="dev sentences timed at batch 512")
    parser.add_argument("--batch1_examples", type=int, default=32, help="dev sentences timed at batch 1")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum timed seconds per measurement")
    parser.add_argument("--models", default="student,minilm,bert_base,bert_large", help="comma-separated models")
    parser.add_argument("--max_length", type=int, default=64, help="student truncation and TFLite input length")
    parser.add_argument("--tflite_runs", type=int, default=2000)
    args = parser.parse_args()

    task, preset = get_task("sst2"), get_preset("sst2")
    train, dev = (
        read_examples(
            os.path.join(args.data_dir, f"{split}.tsv"), preset.text_columns, preset.label_column, task.label_names
        )
        for split in ("train", "dev")
    )
    texts = (dev.texts[0][: args.examples],)
    batch1_texts = (dev.texts[0][: args.batch1_examples],)
    models = args.models.split(",")
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "data": {"sentences_batch_512": len(texts[0]), "sentences_batch_1": len(batch1_texts[0])},
    }

    keras.utils.set_random_seed(0)
    vocabulary = Vocabulary.from_texts(train.texts[0])
    student = build_student(
        task, len(vocabulary), embedding_dim=300, multichannel=True, lstm_units=150, hidden_units=200
    )
    tokenizer = WordTokenizer(vocabulary.tokens, args.max_length)
    if "student" in models:
        batches = {
            "batch_512": speed.student_batches(tokenizer, texts, 512),
            "batch_1": speed.student_batches(tokenizer, batch1_texts, 1),
        }
        parameters = speed.parameter_counts(student, speed.student_embedding_parameters(student))
        results["student"] = {"parameters": parameters, **speed.throughputs(student, batches, args.seconds)}
        exported = fold_student(student)
        results["student_exported"] = {
            "folded": True,
            "folded_table_bytes": folded_bytes(student),
            "parameters": parameters,  # the student's: the table is a cache of a product of its weights
            **speed.throughputs(exported, batches, args.seconds),
        }
        for fold in (True, False):
            results["student_tflite" + ("" if fold else "_unfolded")] = tflite_latency(
                student, task, vocabulary, args.max_length, args.tflite_runs, fold
            )

    if "minilm" in models:
        teacher = load_teacher("minilm", task.num_classes, max_length=128)
        results["minilm"] = time_teacher(teacher, texts, batch1_texts, args.seconds)
    bert_tokenizer = None
    for name in ("bert_base", "bert_large"):
        if name in models:
            bert_tokenizer = bert_tokenizer or load_backbone_and_tokenizer("minilm")[1]
            keras.utils.set_random_seed(0)
            model = speed.bert_with_shape(speed.BERT_SHAPES[name], bert_tokenizer, sequence_length=128)
            results[name] = time_teacher(model, texts, batch1_texts, args.seconds)
            del model

    if "student" in results:
        student_speed = results["student_exported"]
        for name in ("minilm", "bert_base", "bert_large"):
            if name in results:
                results[f"student_vs_{name}"] = {
                    "speedup_batch_512": student_speed["batch_512"]["examples_per_second"]
                    / results[name]["batch_512"]["examples_per_second"],
                    "speedup_batch_1": student_speed["batch_1"]["examples_per_second"]
                    / results[name]["batch_1"]["examples_per_second"],
                    "non_embedding_parameter_ratio": results[name]["parameters"]["non_embedding"]
                    / student_speed["parameters"]["non_embedding"],
                    "total_parameter_ratio": results[name]["parameters"]["total"]
                    / student_speed["parameters"]["non_embedding"],
                }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
