"""An independent NumPy (float64) transcription of Hugging Face's MPNetModel forward pass in eval mode, the tiny
configuration and vocabulary the MPNet tests share, and the same weights under Hugging Face's tensor names.

Written from the model's description (MPNet paper, Hugging Face's config and tensor names), not from the
package's code: the tests compare `bilstm_kd.teacher.mpnet` with it.
"""

import json
import math
import os

import numpy as np
import safetensors.numpy

# A tiny vocabulary laid out as MPNet's: RoBERTa's specials first, BERT's [UNK] later, <mask> last.
VOCABULARY = [
    "<s>", "<pad>", "</s>", "<unk>", "[UNK]", "a", "the", "film", "movie", "good", "bad", "was", "not", "very",
    "cafe", "naive", "great", "!", ".", ",", "-", "'", "s", "it", "un", "##liev", "##able", "be", "##s", "<mask>",
]  # fmt: skip
MASK_ID = VOCABULARY.index("<mask>")

# MPNetBackbone arguments of the tiny model; the Hugging Face config.json that describes it is `hf_config`.
TINY = {
    "vocabulary_size": len(VOCABULARY),
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 8,
    "intermediate_dim": 16,
    "max_sequence_length": 16,
    "layer_norm_epsilon": 1e-5,
    "pad_token_id": 1,
}


def hf_config(num_buckets=32):
    """config.json of the tiny model as Hugging Face writes it (514 positions <-> 512 tokens: here 18 <-> 16)."""
    return {
        "architectures": ["MPNetModel"],
        "model_type": "mpnet",
        "vocab_size": TINY["vocabulary_size"],
        "hidden_size": TINY["hidden_dim"],
        "num_hidden_layers": TINY["num_layers"],
        "num_attention_heads": TINY["num_heads"],
        "intermediate_size": TINY["intermediate_dim"],
        "max_position_embeddings": TINY["max_sequence_length"] + TINY["pad_token_id"] + 1,
        "relative_attention_num_buckets": num_buckets,
        "layer_norm_eps": TINY["layer_norm_epsilon"],
        "pad_token_id": TINY["pad_token_id"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }


def random_hf_weights(num_buckets=32, seed=0, scale=0.4):
    """Random weights of the tiny model under Hugging Face's MPNetModel tensor names ([out, in] matrices)."""
    rng = np.random.default_rng(seed)
    hidden, inner = TINY["hidden_dim"], TINY["intermediate_dim"]
    positions = TINY["max_sequence_length"] + TINY["pad_token_id"] + 1

    def normal(*shape):
        return rng.normal(scale=scale, size=shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": normal(TINY["vocabulary_size"], hidden),
        "embeddings.position_embeddings.weight": normal(positions, hidden),
        "embeddings.LayerNorm.weight": 1 + normal(hidden),
        "embeddings.LayerNorm.bias": normal(hidden),
        "encoder.relative_attention_bias.weight": 3 * normal(num_buckets, TINY["num_heads"]),
        "pooler.dense.weight": normal(hidden, hidden),
        "pooler.dense.bias": normal(hidden),
    }
    for index in range(TINY["num_layers"]):
        prefix = f"encoder.layer.{index}."
        for name in ("q", "k", "v", "o"):
            weights[f"{prefix}attention.attn.{name}.weight"] = normal(hidden, hidden)
            weights[f"{prefix}attention.attn.{name}.bias"] = normal(hidden)
        weights[f"{prefix}intermediate.dense.weight"] = normal(inner, hidden)
        weights[f"{prefix}intermediate.dense.bias"] = normal(inner)
        weights[f"{prefix}output.dense.weight"] = normal(hidden, inner)
        weights[f"{prefix}output.dense.bias"] = normal(hidden)
        for name in ("attention.LayerNorm", "output.LayerNorm"):
            weights[f"{prefix}{name}.weight"] = 1 + normal(hidden)
            weights[f"{prefix}{name}.bias"] = normal(hidden)
    return weights


def write_checkpoint(directory, weights, config=None, vocabulary=VOCABULARY):
    """A Hugging Face MPNet directory: config.json, model.safetensors and vocab.txt."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as file:
        json.dump(config or hf_config(), file)
    safetensors.numpy.save_file(weights, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as file:
        file.writelines(f"{token}\n" for token in vocabulary)
    return directory


def numpy_buckets(relative_positions, num_buckets=32, max_distance=128):
    """T5's bidirectional bucket of key position minus query position, vectorised in float64."""
    relative_positions = np.asarray(relative_positions)
    side = num_buckets // 2
    exact = side // 2
    distance = np.abs(relative_positions)
    logarithmic = exact + np.floor(
        np.log(np.maximum(distance, 1) / exact) / np.log(max_distance / exact) * (side - exact)
    )
    bucket = np.where(distance < exact, distance, np.minimum(logarithmic, side - 1))
    return bucket.astype(np.int64) + np.where(relative_positions > 0, side, 0)


def _layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _linear(x, weights, name):
    return x @ weights[name + ".weight"].astype(np.float64).T + weights[name + ".bias"]


def numpy_forward(weights, token_ids, padding_mask, num_heads=TINY["num_heads"], num_buckets=32, max_distance=128):
    """MPNetModel's `(last_hidden_state, pooler_output)` for right-padded `token_ids` `[batch, length]`."""
    weights = {name: np.asarray(value, np.float64) for name, value in weights.items()}
    epsilon, pad_id = TINY["layer_norm_epsilon"], TINY["pad_token_id"]
    mask = np.asarray(padding_mask).astype(np.int64)
    batch, length = mask.shape
    position_ids = np.cumsum(mask, axis=1) * mask + pad_id
    x = (
        weights["embeddings.word_embeddings.weight"][token_ids]
        + weights["embeddings.position_embeddings.weight"][position_ids]
    )
    x = _layer_norm(x, weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], epsilon)

    query_positions = np.arange(length)[:, None]
    key_positions = np.arange(length)[None, :]
    buckets = numpy_buckets(key_positions - query_positions, num_buckets, max_distance)
    bias = weights["encoder.relative_attention_bias.weight"][buckets].transpose(2, 0, 1)  # [heads, query, key]

    head_size = x.shape[-1] // num_heads
    num_layers = len({name.split(".")[2] for name in weights if name.startswith("encoder.layer.")})
    for index in range(num_layers):
        prefix = f"encoder.layer.{index}."

        def split_heads(values):
            return values.reshape(batch, length, num_heads, head_size).transpose(0, 2, 1, 3)

        queries, keys, values = (
            split_heads(_linear(x, weights, f"{prefix}attention.attn.{name}")) for name in ("q", "k", "v")
        )
        scores = queries @ keys.transpose(0, 1, 3, 2) / math.sqrt(head_size) + bias[None]
        scores = np.where(mask[:, None, None, :] == 1, scores, -np.inf)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities = scores / scores.sum(-1, keepdims=True)
        context = (probabilities @ values).transpose(0, 2, 1, 3).reshape(batch, length, -1)
        attended = _linear(context, weights, f"{prefix}attention.attn.o")
        x = _layer_norm(
            x + attended,
            weights[f"{prefix}attention.LayerNorm.weight"],
            weights[f"{prefix}attention.LayerNorm.bias"],
            epsilon,
        )
        inner = _gelu(_linear(x, weights, f"{prefix}intermediate.dense"))
        x = _layer_norm(
            x + _linear(inner, weights, f"{prefix}output.dense"),
            weights[f"{prefix}output.LayerNorm.weight"],
            weights[f"{prefix}output.LayerNorm.bias"],
            epsilon,
        )
    pooled = np.tanh(_linear(x[:, 0], weights, "pooler.dense"))
    return x, pooled


def batch_inputs():
    """A right-padded batch of 2 of different lengths, in `BertBackbone`'s input format."""
    token_ids = np.array(
        [[0, 6, 7, 11, 9, 18, 2, 1, 1, 1], [0, 5, 13, 16, 8, 17, 14, 20, 23, 2]],
        np.int32,
    )
    padding_mask = token_ids != TINY["pad_token_id"]
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
    }


def hf_weights_of(backbone):
    """The weights of an `MPNetBackbone` under Hugging Face's tensor names and layouts ([out, in] matrices)."""
    hidden = backbone.hidden_dim

    def value(variable):
        return np.asarray(variable.numpy(), np.float32)

    weights = {
        "embeddings.word_embeddings.weight": value(backbone.token_embedding.embeddings),
        "embeddings.position_embeddings.weight": value(backbone.get_layer("position_embedding").embeddings),
        "embeddings.LayerNorm.weight": value(backbone.get_layer("embeddings_layer_norm").gamma),
        "embeddings.LayerNorm.bias": value(backbone.get_layer("embeddings_layer_norm").beta),
        "encoder.relative_attention_bias.weight": value(backbone.get_layer("relative_position_bias").embeddings),
        "pooler.dense.weight": value(backbone.get_layer("pooled_dense").kernel).T,
        "pooler.dense.bias": value(backbone.get_layer("pooled_dense").bias),
    }
    for index in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{index}")
        prefix = f"encoder.layer.{index}."
        for name, layer in (("q", block.query_dense), ("k", block.key_dense), ("v", block.value_dense)):
            weights[f"{prefix}attention.attn.{name}.weight"] = value(layer.kernel).reshape(hidden, hidden).T
            weights[f"{prefix}attention.attn.{name}.bias"] = value(layer.bias).reshape(hidden)
        weights[f"{prefix}attention.attn.o.weight"] = (
            value(block.attention_output_dense.kernel).reshape(hidden, hidden).T
        )
        weights[f"{prefix}attention.attn.o.bias"] = value(block.attention_output_dense.bias)
        weights[f"{prefix}intermediate.dense.weight"] = value(block.intermediate_dense.kernel).T
        weights[f"{prefix}intermediate.dense.bias"] = value(block.intermediate_dense.bias)
        weights[f"{prefix}output.dense.weight"] = value(block.output_dense.kernel).T
        weights[f"{prefix}output.dense.bias"] = value(block.output_dense.bias)
        for name, layer in (
            ("attention.LayerNorm", block.attention_layer_norm),
            ("output.LayerNorm", block.output_layer_norm),
        ):
            weights[f"{prefix}{name}.weight"] = value(layer.gamma)
            weights[f"{prefix}{name}.bias"] = value(layer.beta)
    return {name: np.ascontiguousarray(tensor) for name, tensor in weights.items()}
