"""Shared test set-up: quiet TensorFlow, two logical CPUs, where the real GLUE data is when present, and the
tiny models, vocabularies and examples that tests in several folders build on."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import functools
import json
import pathlib
import subprocess
import sys

import keras_hub
import numpy as np
import pytest
import safetensors.numpy
import tensorflow as tf

from bilstm_kd.teacher.model import BertTeacher

# Two logical CPU devices, so that MirroredStrategy has two replicas to split batches between. This must
# happen before TensorFlow runs any operation; everything else keeps using the first one.
LOGICAL_CPUS = ["/cpu:0", "/cpu:1"]
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * len(LOGICAL_CPUS)
)

GLUE_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"


def tiny_bert_backbone(vocabulary_size, max_sequence_length=16, seed=0, **kwargs):
    """A one-layer, 8-wide keras-hub `BertBackbone` with seeded random weights (`kwargs`: e.g. dropout)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=max_sequence_length,
        **kwargs,
    )


def tiny_student(vocabulary_size, num_classes=2, pair=False):
    """A 4-wide BiLSTM student (3 LSTM units, 5 hidden); `pair`: the siamese one."""
    from bilstm_kd.student.models import BiLSTMClassifier, SiameseBiLSTMClassifier

    student_class = SiameseBiLSTMClassifier if pair else BiLSTMClassifier
    return student_class(vocabulary_size, 4, num_classes, lstm_units=3, hidden_units=5)


requires_glue = pytest.mark.skipif(
    not GLUE_DIR.is_dir(), reason=f"real GLUE data not found at {GLUE_DIR} (it lives in ../shared beside the repo)"
)


# ----------------------------------------------------------------------------------------------------------------
# A tiny BERT teacher on a vocabulary of its own, and examples shaped like `bilstm_kd.data.readers.Examples`

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
# Users' text for property-based tests: any Unicode, with the characters real files hold weighted in

# Unicode's other spaces and line separators, zero-width and format characters, byte-order marks, direction
# marks, combining accents, controls, right-to-left letters, emoji sequences, and what the tokenizers treat
# specially (brackets of [MASK], its private-use stand-in, clitics, addresses, numbers).
TRICKY_CHARACTERS = (
    "\u00a0\u202f\u2009\u2007\u3000\u1680\u2028\u2029\u0085\u000b\u000c\t\n\r "
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202e\u2066\u2069"
    "\u0301\u0308\u0327\u030c\u20dd\u0000\u0007\u001b\u001f\u007f"
    "שלוםمرحبا\u0640éÉßİıΣςﬁǅ😀👍🏽👨🇫🇷\ue000[]!?.,'’-_@/:$%&1234567890aAnNtTsS"
)


def user_text(max_size=40):
    """A Hypothesis strategy: strings of any Unicode scalar (no lone surrogates), tricky characters weighted in."""
    from hypothesis import strategies as st

    alphabet = st.one_of(st.sampled_from(TRICKY_CHARACTERS), st.characters(codec="utf-8"))
    pieces = st.one_of(
        st.text(alphabet, max_size=8),
        st.sampled_from(
            ["[MASK]", "[mask]", "n't", "'s", "https://x.io/a", "a@b.co", "3.5", "1,000", "café", "cafe\u0301"]
        ),
    )
    return st.lists(pieces, max_size=max_size // 4).map("".join)


# A whole pipeline run in seconds: a tiny student on random vectors, no POS replacement (no tagger load).
TINY_STUDENT_FLAGS = (
    "--p_pos=0",
    "--embeddings=random",
    "--embedding_dim=8",
    "--lstm_units=4",
    "--hidden_units=4",
    "--max_length=8",
    "--tflite_quantization=none",  # float32 files: the tests compare every export with the student to 1e-5
)


def tiny_exported_run(directory, label_names=("card_arrival", "refund", "top_up")):
    """A run directory whose export/ holds what the export stage writes for the SavedModel: a tiny student (random
    weights, seeded: its answers are arbitrary but fixed) and labels.txt. In seconds, without training."""
    import keras

    from bilstm_kd.data.tasks import Task
    from bilstm_kd.export.common import write_labels
    from bilstm_kd.export.saved_model import export_saved_model
    from bilstm_kd.text.vocab import RESERVED, Vocabulary

    vocabulary = Vocabulary((*RESERVED, "where", "is", "my", "card", "refund", "top", "up", "please"))
    keras.utils.set_random_seed(0)
    student = tiny_student(len(vocabulary), len(label_names))
    export = pathlib.Path(directory) / "export"
    export_saved_model(student, vocabulary, Task("tiny", tuple(label_names)), 8, export / "saved_model")
    write_labels(str(export), label_names)
    return pathlib.Path(directory)


# The installed console script `bilstm-kd` (pyproject's [project.scripts]: bilstm_kd.cli:console), run as pip's
# wrapper runs it, so that tests need no reinstall.
BILSTM_KD = [sys.executable, "-c", "import sys; from bilstm_kd.cli import console; console(sys.argv)"]


def bilstm_kd(*argv, cwd=None, timeout=300):
    """Runs `bilstm-kd *argv` as a user does: in a new process, without the TF_CPP_MIN_LOG_LEVEL set above."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = [*BILSTM_KD, *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout)
