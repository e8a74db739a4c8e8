"""Teacher speed settings, checked on CPU for correctness: mixed precision (logits, loss scaling, what is saved)
and XLA on bucketed lengths (the same logits, a bounded number of compiled shapes)."""

import dataclasses
import itertools
import json

import keras
import keras_hub
import numpy as np
import pytest
from conftest import VOCABULARY, sentiment_examples, tiny_bert_backbone, tiny_teacher, tiny_tokenizer

from bilstm_kd.data.tasks import get_task
from bilstm_kd.distill.evaluation import traced_forward
from bilstm_kd.teacher import fine_tuning, precision
from bilstm_kd.teacher.batches import training_dataset
from bilstm_kd.teacher.fine_tuning import FineTuning, fine_tune_teacher
from bilstm_kd.teacher.inference import TEACHER_INPUTS, encode_texts, encoded_logits, teacher_logits
from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.teacher.precision import bucket_width, bucketed_batches, length_buckets, precision_policy
from bilstm_kd.teacher.saving import load_fine_tuned_teacher

# Stated tolerances of 16-bit logits against float32, as a share of the largest float32 logit (measured on
# the tiny teacher: 0.06% for float16, 0.4% for bfloat16, whose mantissa has 8 bits to float16's 11).
TOLERANCE = {"mixed_float16": 0.01, "mixed_bfloat16": 0.03}


def test_length_buckets_grow_by_at_most_half_and_end_at_the_maximum():
    assert length_buckets(128) == (16, 24, 32, 48, 64, 96, 128)
    assert length_buckets(100) == (16, 24, 32, 48, 64, 96, 100)
    assert length_buckets(16) == (16,)
    buckets = length_buckets(512)
    assert all(later <= 1.5 * earlier for earlier, later in itertools.pairwise(buckets))
    assert [bucket_width(length, length_buckets(128)) for length in (1, 16, 17, 33, 128)] == [16, 16, 24, 48, 128]


def test_bucketed_batches_cover_every_example_once_with_one_shape_per_bucket():
    lengths = np.random.default_rng(0).integers(3, 129, size=3000)
    buckets = length_buckets(128)
    batches = bucketed_batches(lengths, batch_size=64, max_tokens=2048, buckets=buckets)
    assert sorted(np.concatenate([indices for indices, _, _ in batches]).tolist()) == list(range(3000))
    shapes = {(rows, width) for _, width, rows in batches}
    assert len(shapes) == len(buckets)  # every bucket is used here, each with one shape
    for indices, width, rows in batches:
        assert len(indices) <= rows and rows * width <= 2048 and lengths[indices].max() <= width
        assert width == bucket_width(int(lengths[indices].max()), buckets)  # not padded past its bucket


def test_precision_policy_follows_the_device(monkeypatch):
    assert precision_policy("off") == "float32"
    assert precision_policy("mixed_bfloat16") == "mixed_bfloat16"
    for gpu, tpu, bfloat16, expected in [
        (True, False, True, "mixed_float16"),
        (False, True, False, "mixed_bfloat16"),
        (False, False, True, "mixed_bfloat16"),
        (False, False, False, "float32"),
    ]:
        monkeypatch.setattr(precision, "has_gpu", lambda gpu=gpu: gpu)
        monkeypatch.setattr(precision, "has_tpu", lambda tpu=tpu: tpu)
        monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda bfloat16=bfloat16: bfloat16)
        assert precision_policy("auto") == expected


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_logits_are_within_the_stated_tolerance_of_float32(policy):
    teacher = tiny_teacher(pooling="mean")
    texts = sentiment_examples(20).texts[0]
    expected = teacher_logits(teacher, texts)
    mixed = teacher.with_precision(policy)
    assert mixed.precision == policy and teacher.precision == "float32"
    assert all(weight.dtype == "float32" for weight in mixed.weights)  # 16-bit compute, float32 weights
    logits = teacher_logits(mixed, texts)
    assert logits.dtype == np.float32
    difference = np.abs(logits - expected).max()
    assert 0 < difference <= TOLERANCE[policy] * np.abs(expected).max()  # 0: it did not compute in 16 bits
    np.testing.assert_array_equal(logits.argmax(axis=1), expected.argmax(axis=1))


def test_xla_logits_equal_plain_logits_with_one_compiled_program_per_bucket():
    length = 64  # buckets 16, 24, 32, 48, 64
    backbone = tiny_bert_backbone(len(VOCABULARY), max_sequence_length=length, seed=2)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=length)
    teacher = BertTeacher(backbone, preprocessor, num_classes=2)
    texts = [" ".join(["good", "film"] * count) for count in range(1, 35)]  # 4 to 64 word pieces, truncated
    encoded = encode_texts(preprocessor, texts)
    expected = encoded_logits(teacher, encoded, batch_size=8)
    logits = encoded_logits(teacher, encoded, batch_size=8, jit_compile=True)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    compiled = traced_forward(teacher, TEACHER_INPUTS, jit_compile=True)
    assert compiled.experimental_get_tracing_count() == len(length_buckets(length))  # 34 lengths, 5 programs
    # More text of other lengths in the same buckets compiles nothing new.
    encoded_logits(teacher, encode_texts(preprocessor, ["good", "a very good film"] * 5), 8, jit_compile=True)
    assert compiled.experimental_get_tracing_count() == len(length_buckets(length))


def test_training_batches_under_xla_are_padded_to_the_buckets():
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=64)
    texts = [" ".join(["good"] * count) for count in range(1, 60)]
    encoded = encode_texts(preprocessor, texts)
    buckets = length_buckets(64)
    dataset = training_dataset(encoded, np.zeros(len(texts), np.int32), batch_size=4, seed=0, buckets=buckets)
    widths = {inputs["token_ids"].shape[1] for inputs, _ in dataset.take(60).as_numpy_iterator()}
    assert widths == set(buckets)
    plain = training_dataset(encoded, np.zeros(len(texts), np.int32), batch_size=4, seed=0)
    assert len({inputs["token_ids"].shape[1] for inputs, _ in plain.take(60).as_numpy_iterator()}) > len(buckets)


def test_mixed_float16_fine_tuning_scales_the_loss_and_saves_a_float32_teacher(preset_directory, tmp_path):
    teacher = tiny_teacher().with_precision("mixed_float16")
    fine_tuning.compile_teacher(teacher, FineTuning(), total_steps=10)
    assert isinstance(teacher.optimizer, keras.optimizers.LossScaleOptimizer)
    float_teacher = tiny_teacher()
    fine_tuning.compile_teacher(float_teacher, FineTuning(), total_steps=10)
    assert not isinstance(float_teacher.optimizer, keras.optimizers.LossScaleOptimizer)

    config = FineTuning(teacher=preset_directory, epochs=1, learning_rate=3e-3, batch_size=4, max_length=16)
    task, train, dev = get_task("sst2"), sentiment_examples(16), sentiment_examples(6)
    mixed_config = dataclasses.replace(config, mixed_precision="mixed_float16")
    directory = str(tmp_path / "mixed")
    mixed, _ = fine_tune_teacher(mixed_config, task, train, dev, directory, verbose=0)
    assert mixed.precision == "mixed_float16"
    assert load_fine_tuned_teacher(directory).precision == "float32"  # the file is float32: precision is a choice
    assert np.isfinite(teacher_logits(mixed, dev.texts[0])).all()
    settings = fine_tuning._fine_tuning_settings(mixed_config, task, train, dev, seed=0)
    assert settings["teacher"]["mixed_precision"] == "mixed_float16"
    assert "mixed_precision" not in fine_tuning._fine_tuning_settings(config, task, train, dev, seed=0)["teacher"]


def test_a_teacher_fine_tuned_with_xla_learns_and_is_reused_without_it(preset_directory, tmp_path, monkeypatch):
    config = FineTuning(
        teacher=preset_directory,
        pooling="mean",
        epochs=3,
        learning_rate=3e-3,
        batch_size=4,
        max_length=16,
        jit_compile=True,
    )
    task, train, dev = get_task("sst2"), sentiment_examples(40), sentiment_examples(10)
    directory = tmp_path / "xla"
    _, metrics = fine_tune_teacher(config, task, train, dev, str(directory), verbose=0)
    losses = [epoch["loss"] for epoch in json.loads((directory / "teacher.json").read_text())["history"]]
    assert losses[-1] < losses[0] and metrics["accuracy"] > 0.5
    monkeypatch.setattr(fine_tuning, "load_teacher", lambda *args, **kwargs: pytest.fail("fine-tuned again"))
    reused = fine_tune_teacher(dataclasses.replace(config, jit_compile=False), task, train, dev, str(directory))
    assert reused[1] == metrics  # XLA changes how the teacher runs, not which teacher it is
