"""`from_hugging_face`: an `MPNetBackbone` and `MPNetTokenizer` from a local Hugging Face MPNet checkpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import safetensors.numpy

from bilstm_kd.teacher.mpnet.backbone import MPNetBackbone
from bilstm_kd.teacher.mpnet.tokenizer import MPNetTokenizer

# Tensors of a Hugging Face checkpoint that the backbone has no use for: the position ids buffer, and the
# masked-LM head of `MPNetForMaskedLM` checkpoints (microsoft/mpnet-base).
_UNUSED_PREFIXES = ("embeddings.position_ids", "lm_head.")
_MODEL_PREFIX = "mpnet."  # how `MPNetFor...` checkpoints name the encoder's tensors
# Defaults of Hugging Face's `MPNetConfig` for keys that a config.json may leave out.
_CONFIG_DEFAULTS = {
    "hidden_dropout_prob": 0.1,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 1,
    "relative_attention_num_buckets": 32,
    "hidden_act": "gelu",
}
# Hugging Face's MPNet buckets relative positions up to this distance; its config does not carry it.
_MAX_DISTANCE = 128


def _read_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _require(directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{directory} is not a Hugging Face MPNet checkpoint: it has no {name}")
    return path


def backbone_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """`MPNetBackbone` arguments from a Hugging Face MPNet config.json (a dict); raises ValueError if it is not one."""
    if config.get("model_type") != "mpnet":
        raise ValueError(f"config.json has model_type={config.get('model_type')!r}, expected 'mpnet'")
    config = {**_CONFIG_DEFAULTS, **config}
    if config["hidden_act"] != "gelu":
        raise ValueError(f"config.json has hidden_act={config['hidden_act']!r}; MPNetBackbone uses exact 'gelu'")
    max_sequence_length = config["max_position_embeddings"] - config["pad_token_id"] - 1
    if max_sequence_length < 1:
        raise ValueError(
            f"config.json has max_position_embeddings={config['max_position_embeddings']} for "
            f"pad_token_id={config['pad_token_id']}: no room for any position"
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        "dropout": config["hidden_dropout_prob"],
        "max_sequence_length": max_sequence_length,
        "relative_attention_num_buckets": config["relative_attention_num_buckets"],
        "relative_attention_max_distance": _MAX_DISTANCE,
        "layer_norm_epsilon": config["layer_norm_eps"],
        "pad_token_id": config["pad_token_id"],
    }


def _assignments(backbone: MPNetBackbone) -> dict[str, tuple[Any, tuple[int, ...], Callable[[np.ndarray], Any]]]:
    """Each Hugging Face tensor name: the variable it fills, the tensor's expected shape, and how it becomes the
    variable's value (torch's `Linear` stores `[out, in]`; Keras kernels are `[in, out]`, split into heads)."""
    hidden, heads = backbone.hidden_dim, backbone.num_heads
    head_dim = hidden // heads

    def same(variable):
        return variable, tuple(variable.shape), lambda tensor: tensor

    def dense(variable):
        return variable, tuple(variable.shape)[::-1], lambda tensor: tensor.T

    def heads_in(variable):  # query/key/value kernels [in, heads, head size]
        return variable, (hidden, hidden), lambda tensor: tensor.T.reshape(hidden, heads, head_dim)

    def heads_bias(variable):  # query/key/value biases [heads, head size]
        return variable, (hidden,), lambda tensor: tensor.reshape(heads, head_dim)

    def heads_out(variable):  # attention output kernel [heads, head size, out]
        return variable, (hidden, hidden), lambda tensor: tensor.T.reshape(heads, head_dim, hidden)

    def layer(name):
        return backbone.get_layer(name)

    assignments = {
        "embeddings.word_embeddings.weight": same(layer("token_embedding").embeddings),
        "embeddings.position_embeddings.weight": same(layer("position_embedding").embeddings),
        "embeddings.LayerNorm.weight": same(layer("embeddings_layer_norm").gamma),
        "embeddings.LayerNorm.bias": same(layer("embeddings_layer_norm").beta),
        "encoder.relative_attention_bias.weight": same(layer("relative_position_bias").embeddings),
        "pooler.dense.weight": dense(layer("pooled_dense").kernel),
        "pooler.dense.bias": same(layer("pooled_dense").bias),
    }
    for index in range(backbone.num_layers):
        block = layer(f"transformer_layer_{index}")
        prefix = f"encoder.layer.{index}."
        for name, projection in (("q", block.query_dense), ("k", block.key_dense), ("v", block.value_dense)):
            assignments[f"{prefix}attention.attn.{name}.weight"] = heads_in(projection.kernel)
            assignments[f"{prefix}attention.attn.{name}.bias"] = heads_bias(projection.bias)
        assignments[f"{prefix}attention.attn.o.weight"] = heads_out(block.attention_output_dense.kernel)
        assignments[f"{prefix}attention.attn.o.bias"] = same(block.attention_output_dense.bias)
        assignments[f"{prefix}attention.LayerNorm.weight"] = same(block.attention_layer_norm.gamma)
        assignments[f"{prefix}attention.LayerNorm.bias"] = same(block.attention_layer_norm.beta)
        assignments[f"{prefix}intermediate.dense.weight"] = dense(block.intermediate_dense.kernel)
        assignments[f"{prefix}intermediate.dense.bias"] = same(block.intermediate_dense.bias)
        assignments[f"{prefix}output.dense.weight"] = dense(block.output_dense.kernel)
        assignments[f"{prefix}output.dense.bias"] = same(block.output_dense.bias)
        assignments[f"{prefix}output.LayerNorm.weight"] = same(block.output_layer_norm.gamma)
        assignments[f"{prefix}output.LayerNorm.bias"] = same(block.output_layer_norm.beta)
    return assignments


def load_weights(backbone: MPNetBackbone, tensors: dict[str, np.ndarray]) -> None:
    """Assigns Hugging Face MPNet tensors (by their `MPNetModel` names, with or without "mpnet.") to `backbone`.

    Raises ValueError naming the tensor when one is missing, unexpected or of the wrong shape, before any
    variable changes.
    """
    if any(name.startswith(_MODEL_PREFIX) for name in tensors):
        tensors = {name.removeprefix(_MODEL_PREFIX): tensor for name, tensor in tensors.items()}
    tensors = {name: tensor for name, tensor in tensors.items() if not name.startswith(_UNUSED_PREFIXES)}
    assignments = _assignments(backbone)
    missing = sorted(set(assignments) - set(tensors))
    if missing:
        raise ValueError(f"The checkpoint lacks {len(missing)} tensor(s) MPNetBackbone needs: {', '.join(missing)}")
    unexpected = sorted(set(tensors) - set(assignments))
    if unexpected:
        raise ValueError(f"The checkpoint has {len(unexpected)} unexpected tensor(s): {', '.join(unexpected)}")
    values = []
    for name, (variable, expected_shape, transform) in assignments.items():
        if tuple(tensors[name].shape) != expected_shape:
            raise ValueError(
                f"Tensor {name} has shape {tuple(tensors[name].shape)}, expected {expected_shape} from config.json"
            )
        values.append((variable, transform(np.asarray(tensors[name], dtype=np.float32))))
    for variable, value in values:
        variable.assign(value)


def from_hugging_face(directory: str | os.PathLike, dtype: Any = None) -> tuple[MPNetBackbone, MPNetTokenizer]:
    """An `MPNetBackbone` with the weights of a local Hugging Face MPNet checkpoint, and its tokenizer.

    The directory holds config.json (`model_type: mpnet`), model.safetensors and vocab.txt, as
    sentence-transformers/all-mpnet-base-v2 does; tokenizer_config.json, if present, gives the casing, accent
    stripping and unknown token. `max_sequence_length` is `max_position_embeddings - pad_token_id - 1` (512
    for the 514 positions of all-mpnet-base-v2). Every tensor is checked against the config: a missing,
    unexpected or misshapen one raises ValueError naming it (the position ids buffer and a masked-LM head are
    ignored). The tokenizer keeps special tokens written in text, such as `<mask>`, as single tokens.

    Args:
        directory: the checkpoint directory.
        dtype: the backbone's Keras dtype policy, e.g. `"mixed_bfloat16"` (None: the global policy).

    Returns:
        The backbone and an `MPNetTokenizer` with `special_tokens_in_strings=True`.

    Example:
    >>> backbone, tokenizer = from_hugging_face(os.path.expanduser("~/.cache/bilstm_kd/all-mpnet-base-v2"))
    >>> preprocessor = MPNetTextClassifierPreprocessor(tokenizer, sequence_length=128)
    """
    directory = os.fspath(directory)
    config = _read_json(_require(directory, "config.json"))
    weights_path = _require(directory, "model.safetensors")
    vocabulary_path = _require(directory, "vocab.txt")
    backbone = MPNetBackbone(**backbone_arguments(config), dtype=dtype)
    load_weights(backbone, safetensors.numpy.load_file(weights_path))

    settings_path = os.path.join(directory, "tokenizer_config.json")
    settings = _read_json(settings_path) if os.path.exists(settings_path) else {}
    lowercase = settings.get("do_lower_case", True)
    strip_accents = settings.get("strip_accents")
    if strip_accents is None:  # Hugging Face's BERT-style normaliser strips accents whenever it lowercases
        strip_accents = lowercase
    with open(vocabulary_path, encoding="utf-8") as file:
        vocabulary = [line.rstrip("\n") for line in file]
    unknown = settings.get("unk_token", "[UNK]")
    tokenizer = MPNetTokenizer(
        vocabulary,
        lowercase=bool(lowercase),
        strip_accents=bool(strip_accents),
        oov_token=unknown["content"] if isinstance(unknown, dict) else unknown,  # a dict when saved as AddedToken
        special_tokens_in_strings=True,
    )
    if tokenizer.vocabulary_size() != backbone.vocabulary_size:
        raise ValueError(
            f"{vocabulary_path} has {tokenizer.vocabulary_size()} word pieces but config.json has "
            f"vocab_size={backbone.vocabulary_size}"
        )
    return backbone, tokenizer
