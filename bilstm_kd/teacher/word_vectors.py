"""Static word vectors for the student from a pretrained BERT (`--embeddings=teacher`)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from bilstm_kd.distill.evaluation import traced_forward
from bilstm_kd.teacher.inference import TEACHER_INPUTS, encode_texts, length_sorted_batches
from bilstm_kd.teacher.loading import load_backbone_and_tokenizer, load_tokenizer, text_classifier_preprocessor

# Word pieces of one word for `word_vectors`, [CLS] and [SEP] included (longer words are cut).
_WORD_PIECES_PER_WORD = 16


def whole_words(teacher: str) -> list[str]:
    """The whole-word tokens of a pretrained teacher's word-piece vocabulary, in vocabulary order: no `##`
    continuation pieces, no special tokens and no bracketed `[unused]`-like ones."""
    tokenizer = load_tokenizer(teacher)
    special = set(tokenizer.special_tokens)
    return [
        token
        for token in tokenizer.get_vocabulary()
        if not token.startswith("##") and not (token.startswith("[") and token.endswith("]")) and token not in special
    ]


def word_vectors(teacher: str, words: Sequence[str], batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Static word vectors from a pretrained BERT: each word on its own through the backbone, mean-pooled.

    A word's vector is the mean of the final token vectors of `[CLS] word-pieces [SEP]`: for a
    sentence-transformers model such as all-MiniLM-L6-v2, the sentence embedding of the one-word text.
    (Model2Vec, MinishLab 2024, distils sentence-transformers into static embeddings the same way.) Unlike
    the backbone's input embeddings, these see the whole word, however many pieces it has.

    Args:
        teacher: a `--teacher` value (see `load_backbone_and_tokenizer`); the pretrained model is used.
        words: the words, e.g. the student's vocabulary.
        batch_size: words per forward pass.

    Returns:
        float32 vectors `[len(words), hidden size]`, and a boolean `[len(words)]` that is False for words
        whose word pieces are all `[UNK]` (their vector says nothing about them).
    """
    backbone, tokenizer = load_backbone_and_tokenizer(teacher)
    preprocessor = text_classifier_preprocessor(tokenizer, min(_WORD_PIECES_PER_WORD, backbone.max_sequence_length))
    encoded = encode_texts(preprocessor, words)
    inputs = backbone.input
    pooled = keras.layers.GlobalAveragePooling1D(dtype=backbone.dtype_policy)(
        backbone(inputs)["sequence_output"], mask=inputs["padding_mask"]
    )
    encoder = keras.Model(inputs, pooled)  # kept alive: the traced forward holds it weakly
    forward = traced_forward(encoder, TEACHER_INPUTS)
    vectors = np.zeros([len(words), backbone.hidden_dim], np.float32)
    for indices in length_sorted_batches(encoded.lengths, batch_size):
        vectors[indices] = forward(encoded.batch(indices)).numpy()
    known_pieces = np.add.reduceat(encoded.token_ids != tokenizer.token_to_id(tokenizer.oov_token), encoded.offsets) - 2
    return vectors, known_pieces > 0 if len(words) else np.zeros([0], bool)
