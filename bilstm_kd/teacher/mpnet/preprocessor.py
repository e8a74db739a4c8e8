"""`MPNetTextClassifierPreprocessor`: text to packed MPNet inputs, shaped like `BertTextClassifierPreprocessor`'s."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from bilstm_kd.teacher.mpnet.backbone import MPNetBackbone
from bilstm_kd.teacher.mpnet.tokenizer import MPNetTokenizer


def _zeros_like(values):
    if isinstance(values, tf.Tensor | tf.RaggedTensor):
        return tf.zeros_like(values)
    return np.zeros_like(np.asarray(values))


@keras.saving.register_keras_serializable(package="bilstm_kd")
class MPNetTextClassifierPreprocessor(keras_hub.models.TextClassifierPreprocessor):
    """Tokenizes and packs single sentences or sentence pairs for an `MPNetBackbone`.

    Packs as MPNet (and RoBERTa) were trained: `<s> A </s>` and `<s> A </s></s> B </s>`, padded with `<pad>`
    to `sequence_length`; pairs too long are cut one token at a time from the longer segment
    (`truncate="round_robin"`), or the first segment keeps all that fits (`"waterfall"`). The output dict is
    `BertTextClassifierPreprocessor`'s: `token_ids`, `padding_mask` (true for real tokens) and `segment_ids`,
    all zeros (MPNet has no token types; the key is there so that code written for BERT inputs runs
    unchanged). As every keras-hub preprocessor it takes `x` (a string tensor, or a tuple of two for
    pairs), `y` and `sample_weight`, and runs in `tf.data` and inside a `tf.function`.

    Args:
        tokenizer: an `MPNetTokenizer`.
        sequence_length: the packed length, special tokens included.
        truncate: `"round_robin"` or `"waterfall"` (keras-hub's `MultiSegmentPacker`).

    Example:
    >>> vocabulary = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>", "a", "good", "film"]
    >>> preprocessor = MPNetTextClassifierPreprocessor(MPNetTokenizer(vocabulary), sequence_length=10)
    >>> preprocessor(x=(tf.constant(["a good film"]), tf.constant(["a film"])))["token_ids"].numpy().tolist()
    [[0, 6, 7, 8, 2, 2, 6, 8, 2, 1]]
    """

    backbone_cls = MPNetBackbone
    tokenizer_cls = MPNetTokenizer

    def __init__(self, tokenizer: MPNetTokenizer, sequence_length: int = 512, truncate: str = "round_robin", **kwargs):
        kwargs.setdefault("name", "mpnet_text_classifier_preprocessor")
        super().__init__(tokenizer, sequence_length=sequence_length, truncate=truncate, **kwargs)

    def build(self, input_shape):
        # MPNet separates the two segments of a pair with two end tokens.
        self.packer = keras_hub.layers.MultiSegmentPacker(
            start_value=self.tokenizer.start_token_id,
            end_value=self.tokenizer.end_token_id,
            sep_value=[self.tokenizer.end_token_id] * 2,
            pad_value=self.tokenizer.pad_token_id,
            truncate=self.truncate,
            sequence_length=self.sequence_length,
        )
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        output = super().call(x, y=y, sample_weight=sample_weight)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(output)
        x = {**x, "segment_ids": _zeros_like(x["segment_ids"])}
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
