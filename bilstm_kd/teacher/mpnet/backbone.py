"""`MPNetBackbone`: the MPNet encoder (Song et al., 2020) as a keras-hub backbone with `BertBackbone`'s inputs and
outputs."""

from __future__ import annotations

from typing import Any

import keras
import keras_hub

from bilstm_kd.teacher.mpnet.layers import MPNetEncoderLayer, MPNetRelativePositionBias, check_bucket_arguments


def _initializer() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=0.02)


def _check_positive_integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}")


@keras.saving.register_keras_serializable(package="bilstm_kd")
class MPNetBackbone(keras_hub.models.Backbone):
    """The MPNet encoder network, computing what Hugging Face's `MPNetModel` computes (eval mode).

    Word embeddings plus learned absolute position embeddings, LayerNorm and dropout, then `num_layers`
    post-LayerNorm transformer blocks like BERT's whose attention scores all get a relative position bias
    from one table shared by the layers (T5-style buckets of key minus query position). Position ids count
    the real tokens from `pad_token_id + 1` (`cumsum(padding_mask) * padding_mask + pad_token_id`), so padded
    positions read row `pad_token_id` and the position table has `max_sequence_length + pad_token_id + 1`
    rows (514 for all-mpnet-base-v2). MPNet has no token types: `segment_ids` is accepted, so that the
    backbone takes `BertBackbone`'s inputs, and ignored.

    Inputs are a dict of `token_ids`, `segment_ids` and `padding_mask` (int or bool, `[batch, length]`,
    padding on the right); outputs a dict of `sequence_output` `[batch, length, hidden_dim]` and
    `pooled_output` `[batch, hidden_dim]` (dense + tanh on the first token, the `"pooled_dense"` layer).
    Under a mixed dtype policy the layers compute in 16 bits; the attention softmax and layer normalisation
    compute in float32 (see `layers`). Load pretrained weights with `convert.from_hugging_face`.

    Args:
        vocabulary_size: size of the word-piece vocabulary.
        num_layers: transformer layers.
        num_heads: attention heads per layer; `hidden_dim` must be a multiple of it.
        hidden_dim: width of the embeddings, the transformer layers and the pooler.
        intermediate_dim: width of each layer's feed-forward block.
        dropout: dropout rate of the embeddings, attention probabilities and sub-block outputs.
        max_sequence_length: the most tokens per input.
        relative_attention_num_buckets: relative-position buckets (both directions together).
        relative_attention_max_distance: the distance from which positions share their direction's last bucket.
        layer_norm_epsilon: epsilon of every layer normalisation.
        pad_token_id: the padding token's id, which also offsets the position ids.
        dtype: a Keras dtype policy (name) for computations and weights, e.g. `"mixed_bfloat16"`.

    Example:
    >>> backbone = MPNetBackbone(
    ...     vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16
    ... )
    >>> outputs = backbone(
    ...     {
    ...         "token_ids": np.array([[0, 5, 6, 2, 1]]),
    ...         "segment_ids": np.zeros([1, 5], "int32"),
    ...         "padding_mask": np.array([[1, 1, 1, 1, 0]]),
    ...     }
    ... )
    >>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
    (TensorShape([1, 5, 8]), TensorShape([1, 8]))
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        relative_attention_num_buckets: int = 32,
        relative_attention_max_distance: int = 128,
        layer_norm_epsilon: float = 1e-5,
        pad_token_id: int = 1,
        dtype: Any = None,
        **kwargs,
    ):
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("hidden_dim", hidden_dim),
            ("intermediate_dim", intermediate_dim),
            ("max_sequence_length", max_sequence_length),
        ):
            _check_positive_integer(name, value)
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` must be a multiple of `num_heads`, received hidden_dim={hidden_dim} and "
                f"num_heads={num_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received dropout={dropout!r}")
        if not layer_norm_epsilon > 0:
            raise ValueError(
                f"`layer_norm_epsilon` must be positive, received layer_norm_epsilon={layer_norm_epsilon!r}"
            )
        if (
            isinstance(pad_token_id, bool)
            or not isinstance(pad_token_id, int)
            or not 0 <= pad_token_id < vocabulary_size
        ):
            raise ValueError(
                f"`pad_token_id` must be an id of the vocabulary (0 to {vocabulary_size - 1}), received "
                f"pad_token_id={pad_token_id!r}"
            )
        check_bucket_arguments(relative_attention_num_buckets, relative_attention_max_distance, "relative_attention_")

        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, embeddings_initializer=_initializer(), dtype=dtype, name="token_embedding"
        )
        self.position_embedding = keras.layers.Embedding(
            max_sequence_length + pad_token_id + 1,
            hidden_dim,
            embeddings_initializer=_initializer(),
            dtype=dtype,
            name="position_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.relative_position_bias = MPNetRelativePositionBias(
            num_heads,
            num_buckets=relative_attention_num_buckets,
            max_distance=relative_attention_max_distance,
            initializer=_initializer(),
            dtype=dtype,
            name="relative_position_bias",
        )
        self.transformer_layers = [
            MPNetEncoderLayer(
                num_heads,
                intermediate_dim,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=_initializer(),
                dtype=dtype,
                name=f"transformer_layer_{index}",
            )
            for index in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, kernel_initializer=_initializer(), activation="tanh", dtype=dtype, name="pooled_dense"
        )

        # === Functional model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_id_input = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask_input = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        real_tokens = keras.ops.cast(padding_mask_input, "int32")
        position_ids = keras.ops.cumsum(real_tokens, axis=1) * real_tokens + pad_token_id
        x = self.embeddings_add((self.token_embedding(token_id_input), self.position_embedding(position_ids)))
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        attention_bias = self.relative_position_bias(x)
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, attention_bias=attention_bias, padding_mask=padding_mask_input)
        pooled_output = self.pooled_dense(x[:, 0, :])
        kwargs.setdefault("name", "mpnet_backbone")  # not Keras' "mp_net_backbone"
        super().__init__(
            inputs={"token_ids": token_id_input, "segment_ids": segment_id_input, "padding_mask": padding_mask_input},
            outputs={"sequence_output": x, "pooled_output": pooled_output},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pad_token_id = pad_token_id

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "relative_attention_num_buckets": self.relative_attention_num_buckets,
                "relative_attention_max_distance": self.relative_attention_max_distance,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "pad_token_id": self.pad_token_id,
            }
        )
        return config
