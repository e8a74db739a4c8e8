"""`MPNetTokenizer`: MPNet's WordPiece tokenizer, keras-hub's `BertTokenizer` with MPNet's special tokens."""

from __future__ import annotations

from typing import Any

import keras
import keras_hub

from bilstm_kd.teacher.mpnet.backbone import MPNetBackbone


@keras.saving.register_keras_serializable(package="bilstm_kd")
class MPNetTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """The WordPiece tokenizer of MPNet models such as all-mpnet-base-v2.

    BERT's uncased WordPiece (lowercased, accents stripped, split on whitespace, punctuation and CJK
    characters) over MPNet's vocabulary, whose special tokens are RoBERTa's: `<s>` starts a sequence (the
    `start_token`/`cls_token` role), `</s>` ends a segment (`end_token`/`sep_token`), `<pad>` pads and
    `<mask>` masks (id 30526 in all-mpnet-base-v2's vocabulary). Words without a word-piece spelling become
    `oov_token`: `[UNK]` (id 104) in that vocabulary, as its `tokenizer.json` has it (the `<unk>` at id 3
    is never produced). With `special_tokens_in_strings=True`, these tokens written in the text (exactly,
    e.g. `<mask>`; `<unk>` too) become their ids instead of being split as punctuation, as in Hugging
    Face's tokenizer; `[MASK]`, BERT's mask, is not MPNet's and is split.

    A batch of strings gives a ragged tensor of ids, one string a dense one (see keras-hub's
    `WordPieceTokenizer`); `MPNetTextClassifierPreprocessor` adds the special tokens and pads.

    Args:
        vocabulary: a list of word pieces or the path of a vocab.txt (one piece per line; line number = id).
        lowercase: lowercase the text first (special tokens excepted).
        strip_accents: remove accent marks (after NFD normalisation).
        oov_token: the word piece of unknown words.
        **kwargs: further `WordPieceTokenizer` arguments, e.g. `special_tokens_in_strings=True`.

    Example:
    >>> vocabulary = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>", "a", "good", "film", "cafe"]
    >>> tokenizer = MPNetTokenizer(vocabulary, special_tokens_in_strings=True)
    >>> tokenizer("A good <mask> Café!").tolist()  # "!" is unknown here
    [6, 7, 5, 9, 4]
    """

    backbone_cls = MPNetBackbone

    def __init__(
        self,
        vocabulary: Any = None,
        lowercase: bool = True,
        strip_accents: bool = True,
        oov_token: str = "[UNK]",
        **kwargs,
    ):
        self._add_special_token("<s>", "cls_token")
        self._add_special_token("</s>", "sep_token")
        self._add_special_token("<pad>", "pad_token")
        self._add_special_token("<mask>", "mask_token")
        # keras-hub's generic names for the same roles, which its packers read.
        self._add_special_token("<s>", "start_token")
        self._add_special_token("</s>", "end_token")
        # Hugging Face keeps the unknown token whole when it is written in the text, so it is special here too,
        # and so is RoBERTa's `<unk>` (in the vocabulary, yet never produced).
        self._add_special_token(oov_token, "unk_token")
        kwargs.setdefault("special_tokens", ["<unk>"])
        kwargs.setdefault("name", "mpnet_tokenizer")
        super().__init__(
            vocabulary=vocabulary,
            lowercase=lowercase,
            strip_accents=strip_accents,
            oov_token=oov_token,
            **kwargs,
        )
