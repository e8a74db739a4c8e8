"""The layers `MPNetBackbone` is built from: the relative position bias that every layer adds to its attention
scores, and the post-LayerNorm encoder block that takes it (keras-hub's `TransformerEncoder` has no way to add
a bias to the scores).

Half precision: under the mixed dtype policies the projections and the feed-forward block compute in 16 bits,
while the attention scores, the bias and the softmax are float32 and layer normalisation computes in float32
(as Keras' `LayerNormalization` always does), so that neither the mask nor the exponentials overflow.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

# Padded keys get this score before the softmax (float32 scores: far below any real score, yet finite, so a row
# with no key at all still gives a uniform distribution rather than NaN).
_MASKED_SCORE = -1e9


def check_bucket_arguments(num_buckets: int, max_distance: int, prefix: str = "") -> None:
    """Raises ValueError unless `num_buckets` is even and at least 4 and `max_distance` above a quarter of it
    (`prefix`: how the caller's arguments are named, e.g. "relative_attention_")."""
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, int) or num_buckets < 4 or num_buckets % 2:
        raise ValueError(
            f"`{prefix}num_buckets` must be an even integer of at least 4, received {prefix}num_buckets={num_buckets!r}"
        )
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or max_distance <= num_buckets // 4:
        raise ValueError(
            f"`{prefix}max_distance` must be an integer above {prefix}num_buckets // 4 = {num_buckets // 4}, "
            f"received {prefix}max_distance={max_distance!r}"
        )


def distance_buckets(num_buckets: int, max_distance: int) -> np.ndarray:
    """The bucket of each distance 0..`max_distance` between a query and a key on one side of it.

    One side gets `num_buckets // 2` buckets: distances below a quarter of `num_buckets` have a bucket each,
    longer ones share buckets spaced logarithmically up to `max_distance`, and all beyond it share the last.
    Computed once in float64 Python, so that the graph only looks distances up (no logarithm that a 16-bit
    policy or another device could round differently).
    """
    check_bucket_arguments(num_buckets, max_distance)
    side = num_buckets // 2
    exact = side // 2
    buckets = []
    for distance in range(max_distance + 1):
        if distance < exact:
            buckets.append(distance)
        else:
            log_fraction = math.log(distance / exact) / math.log(max_distance / exact)
            buckets.append(min(exact + int(log_fraction * (side - exact)), side - 1))
    return np.asarray(buckets, dtype="int32")


def relative_position_buckets(relative_positions: Any, num_buckets: int = 32, max_distance: int = 128) -> Any:
    """T5's bidirectional buckets of `relative_positions` (key position minus query position), as MPNet uses them.

    Keys before the query (and the query itself) take buckets `0 .. num_buckets // 2 - 1` by distance, keys
    after it the same buckets shifted by `num_buckets // 2` (see `distance_buckets`).

    Args:
        relative_positions: an integer tensor or array of any shape.
        num_buckets: the number of buckets, both sides together.
        max_distance: distances from here on all fall in a side's last bucket.

    Returns:
        int32 buckets, the shape of `relative_positions`.

    Example:
    >>> relative_position_buckets(np.array([-1, 0, 1, 200]))  # -> [1, 0, 17, 31]
    """
    table = ops.convert_to_tensor(distance_buckets(num_buckets, max_distance))
    relative_positions = ops.cast(relative_positions, "int32")
    distances = ops.minimum(ops.abs(relative_positions), max_distance)
    later_side = ops.where(relative_positions > 0, num_buckets // 2, 0)
    return ops.take(table, distances) + ops.cast(later_side, "int32")


@keras.saving.register_keras_serializable(package="bilstm_kd")
class MPNetRelativePositionBias(keras.layers.Layer):
    """The attention bias of every query-key pair from one learned table [buckets, heads], shared by all layers.

    Called on the hidden states `[batch, length, hidden]` (only their length is read), it returns the float32
    bias `[1, heads, length, length]` that each `MPNetEncoderLayer` adds to its attention scores. Positions
    are counted from the first token (right padding leaves them unchanged).

    Args:
        num_heads: attention heads (one bias per head).
        num_buckets: relative-position buckets (`relative_position_buckets`).
        max_distance: the distance beyond which all positions share a bucket.
        initializer: the table's initializer.

    Example:
    >>> bias = MPNetRelativePositionBias(num_heads=2)(np.zeros([1, 5, 8], "float32"))  # shape (1, 2, 5, 5)
    """

    def __init__(
        self,
        num_heads: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        initializer: Any = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_bucket_arguments(num_buckets, max_distance)
        self.num_heads = num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape):
        # Not autocast: the bias is added to float32 scores and keeps its float32 precision under mixed policies.
        self.embeddings = self.add_weight(
            shape=(self.num_buckets, self.num_heads), initializer=self.initializer, name="embeddings", autocast=False
        )
        self.built = True

    def call(self, inputs):
        positions = ops.arange(ops.shape(inputs)[1], dtype="int32")
        relative_positions = positions[None, :] - positions[:, None]  # [query, key]: key minus query
        buckets = relative_position_buckets(relative_positions, self.num_buckets, self.max_distance)
        bias = ops.take(ops.cast(self.embeddings, "float32"), buckets, axis=0)  # [query, key, heads]
        return ops.expand_dims(ops.transpose(bias, (2, 0, 1)), 0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="bilstm_kd")
class MPNetEncoderLayer(keras.layers.Layer):
    """One MPNet transformer block: BERT's post-LayerNorm layer with an additive bias on the attention scores.

    Self-attention (query, key, value and output projections with biases, scores scaled by 1/sqrt(head size),
    plus `attention_bias`, padded keys masked), dropout, add & LayerNorm; then the feed-forward block (dense,
    exact erf GELU, dense), dropout, add & LayerNorm.

    Args:
        num_heads: attention heads; the hidden size must be a multiple of it.
        intermediate_dim: width of the feed-forward block.
        dropout: dropout on the attention probabilities and on both sub-blocks' outputs.
        layer_norm_epsilon: epsilon of both layer normalisations.
        kernel_initializer: initializer of the dense kernels (biases start at zero).

    Call arguments:
        inputs: hidden states `[batch, length, hidden]`.
        attention_bias: float32 `[1 or batch, heads, length, length]`, added to the scores.
        padding_mask: `[batch, length]`, true (or 1) for real tokens; padded keys get no attention.

    Example:
    >>> layer = MPNetEncoderLayer(num_heads=2, intermediate_dim=16)
    >>> outputs = layer(np.ones([1, 5, 8], "float32"), attention_bias=np.zeros([1, 2, 5, 5], "float32"))
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        layer_norm_epsilon: float = 1e-5,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"The hidden size ({hidden_dim}) must be a multiple of num_heads, received num_heads={self.num_heads}"
            )
        head_dim = hidden_dim // self.num_heads

        def dense(equation, output_shape, bias_axes, name):
            return keras.layers.EinsumDense(
                equation,
                output_shape=output_shape,
                bias_axes=bias_axes,
                # A fresh initializer per layer: one unseeded instance would give every kernel the same values.
                kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
                dtype=self.dtype_policy,
                name=name,
            )

        heads_shape = (None, self.num_heads, head_dim)
        self.query_dense = dense("btd,dnh->btnh", heads_shape, "nh", "query")
        self.key_dense = dense("btd,dnh->btnh", heads_shape, "nh", "key")
        self.value_dense = dense("btd,dnh->btnh", heads_shape, "nh", "value")
        self.attention_output_dense = dense("btnh,nhd->btd", (None, hidden_dim), "d", "attention_output")
        self.intermediate_dense = dense("btd,di->bti", (None, self.intermediate_dim), "i", "intermediate")
        self.output_dense = dense("bti,id->btd", (None, hidden_dim), "d", "output")
        for layer in (self.query_dense, self.key_dense, self.value_dense):
            layer.build(inputs_shape)
        self.attention_output_dense.build((None, None, self.num_heads, head_dim))
        self.intermediate_dense.build(inputs_shape)
        self.output_dense.build((None, None, self.intermediate_dim))

        def layer_norm(name):
            layer = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
            layer.build(inputs_shape)
            return layer

        self.attention_layer_norm = layer_norm("attention_layer_norm")
        self.output_layer_norm = layer_norm("output_layer_norm")
        self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="attention_dropout")
        self.attention_output_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_output_dropout"
        )
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="output_dropout")
        self._scale = 1.0 / math.sqrt(head_dim)
        self.built = True

    def call(self, inputs, attention_bias, padding_mask=None, training=None):
        queries = self.query_dense(inputs)  # [batch, length, heads, head size]
        keys = self.key_dense(inputs)
        values = self.value_dense(inputs)
        # Scaling the queries before the product keeps float16 scores in range.
        queries = queries * ops.cast(self._scale, queries.dtype)
        scores = ops.cast(ops.einsum("bqnh,bknh->bnqk", queries, keys), "float32")
        scores = scores + ops.cast(attention_bias, "float32")
        if padding_mask is not None:
            key_mask = ops.expand_dims(ops.cast(padding_mask, "bool"), axis=(1, 2))  # not a slice: TFLite converts it
            scores = ops.where(key_mask, scores, _MASKED_SCORE)
        probabilities = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        probabilities = self.attention_dropout(probabilities, training=training)
        context = ops.einsum("bnqk,bknh->bqnh", probabilities, values)
        attended = self.attention_output_dropout(self.attention_output_dense(context), training=training)
        hidden = self.attention_layer_norm(inputs + attended)

        feedforward = keras.activations.gelu(self.intermediate_dense(hidden), approximate=False)
        feedforward = self.output_dropout(self.output_dense(feedforward), training=training)
        return self.output_layer_norm(hidden + feedforward)

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return inputs_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
