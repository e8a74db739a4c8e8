"""The student's word vocabulary and tokenization.

`tokenize` is the one implementation of the student's tokenization. It is made of TensorFlow string ops,
so the same code runs eagerly, inside `tf.data` pipelines and inside the exported SavedModel. It matches
GLUE's already-tokenized text (lowercased words, punctuation and clitics such as "'s" and "n't" split off)
and brings raw text to the same form: "It's GREAT!!!" -> it 's great !!!, "don't" -> do n't. Accented
letters and emoji stay as they are (a run of emoji or of punctuation is one token), a web address becomes
the word `url` and an e-mail address `email` (each one is otherwise a word seen once), and a number keeps
its decimal point or thousands separator (3.5, 1,000). `[MASK]` (any case) stays one token: augmentation
writes it into the transfer set.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

PAD = "[PAD]"
UNK = "[UNK]"
MASK = "[MASK]"
RESERVED = (PAD, UNK, MASK)
PAD_ID, UNK_ID, MASK_ID = 0, 1, 2

# A private-use character stands in for [MASK] while punctuation is split off, so "[mask]." keeps the
# mask whole. The rules are also written to the TFLite metadata for apps that tokenize on their own.
_MASK_PLACEHOLDER = "\ue000"
TOKENIZATION_RULES = (
    ("lowercase", "utf-8"),
    ("replace", r"\[mask\]", f" {_MASK_PLACEHOLDER} "),
    ("replace", r"(?:https?://|www\.)\S+", " url "),
    ("replace", r"[\pL\pN._%+\-]+@[\pL\pN\-]+(?:\.[\pL\pN\-]+)+", " email "),
    ("replace", r"(\pL)n't\b", r"\1 n't"),
    ("replace", r"(\pL)'(s|re|ll|ve|d|m)\b", r"\1 '\2"),
    ("replace", rf"([^\pL\pN\s'_\-{_MASK_PLACEHOLDER}]+)", r" \1 "),
    ("replace", r"(\pN) ([.,]) (\pN)", r"\1\2\3"),
    ("split", "whitespace"),
    ("token", _MASK_PLACEHOLDER, MASK),
)


def tokenize(texts: tf.Tensor | str | list[str]) -> tf.RaggedTensor:
    """Splits strings into word tokens.

    Args:
        texts: a string or a 1-D batch of strings.

    Returns:
        A `tf.RaggedTensor` of string tokens, shape `[batch, (words)]` (or `[(words)]` for a scalar).
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    texts = tf.strings.lower(texts, encoding="utf-8")
    for rule in TOKENIZATION_RULES:
        if rule[0] == "replace":
            texts = tf.strings.regex_replace(texts, rule[1], rule[2])
    tokens = tf.strings.split(texts)
    return tf.ragged.map_flat_values(lambda flat: tf.where(flat == _MASK_PLACEHOLDER, MASK, flat), tokens)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Word list of the student. Ids are positions: 0 is padding, 1 out-of-vocabulary, 2 `[MASK]`."""

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.tokens[: len(RESERVED)] != RESERVED:
            raise ValueError(f"A vocabulary must start with {RESERVED}; got {self.tokens[: len(RESERVED)]}")
        if len(set(self.tokens)) != len(self.tokens):
            duplicates = [token for token, count in collections.Counter(self.tokens).items() if count > 1]
            raise ValueError(f"Duplicate tokens in vocabulary: {duplicates[:5]}")

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_counts(cls, counts: collections.Counter, min_count: int = 1, max_size: int = 0) -> Vocabulary:
        """Most frequent words first (ties alphabetical), keeping those seen at least `min_count` times."""
        words = sorted(
            (word for word, count in counts.items() if count >= min_count and word not in RESERVED),
            key=lambda word: (-counts[word], word),
        )
        if max_size:
            words = words[: max_size - len(RESERVED)]
        return cls(RESERVED + tuple(words))

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 0) -> Vocabulary:
        return cls.from_counts(count_words(texts), min_count=min_count, max_size=max_size)

    def extended(self, words: Iterable[str]) -> Vocabulary:
        """This vocabulary followed by the new ones among `words`, in their order.

        A word is added in the form the tokenizer gives it (lowercased); words the tokenizer would split
        or drop ("New_York" stays, "New York" and "" do not) can never be looked up and are skipped.
        """
        words = list(words)
        known = set(self.tokens)
        added = []
        if words:
            for tokens in tokenize(tf.constant(words)).to_list():
                if len(tokens) == 1 and (token := tokens[0].decode("utf-8")) not in known:
                    known.add(token)
                    added.append(token)
        return Vocabulary(self.tokens + tuple(added))

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as file:
            file.writelines(f"{token}\n" for token in self.tokens)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Reads a `vocab.txt` written by `save`: one token per line, reserved tokens first."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"No vocabulary file at {path}")
        with open(path, encoding="utf-8") as file:
            tokens = []
            for line_number, line in enumerate(file, start=1):
                token = line.rstrip("\n")
                if not token or any(character.isspace() for character in token):
                    raise ValueError(f"{path}, line {line_number}: a token must be one non-empty word, got {token!r}")
                tokens.append(token)
        try:
            return cls(tuple(tokens))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def count_words(texts: Iterable[str], batch_size: int = 65536) -> collections.Counter:
    """Counts the tokens of `texts` (tokenized in large batches for speed)."""
    counts: collections.Counter = collections.Counter()
    batch: list[str] = []

    def flush() -> None:
        tokens = tokenize(tf.constant(batch)).flat_values.numpy()
        counts.update(token.decode("utf-8") for token in tokens)
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return counts


@keras.saving.register_keras_serializable(package="bilstm_kd")
class WordTokenizer(keras.layers.Layer):
    """Maps raw strings to padded student word ids.

    The layer runs `tokenize`, truncates to `max_length` words and looks the words up in the vocabulary.
    Unknown words map to 1 (`[UNK]`); the output is padded with 0 to the longest sentence in the batch
    (or to `max_length` with `pad_to_max_length=True`). An empty string gives an all-padding row.

    Args:
        vocabulary: the tokens, reserved tokens first (a `Vocabulary`'s `tokens`).
        max_length: the most words kept per sentence.
        pad_to_max_length: pad every batch to `max_length` instead of its longest sentence.

    Example:
    >>> tokenizer = WordTokenizer(["[PAD]", "[UNK]", "[MASK]", "good", "film"], max_length=8)
    >>> tokenizer(tf.constant(["A good film.", ""])).numpy()
    array([[1, 3, 4, 1],
           [0, 0, 0, 0]], dtype=int32)
    """

    def __init__(
        self, vocabulary: list[str] | tuple[str, ...], max_length: int, pad_to_max_length: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        Vocabulary(tuple(vocabulary))  # validates the reserved tokens
        if max_length < 1:
            raise ValueError(f"`max_length` must be at least 1, received max_length={max_length}")
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.pad_to_max_length = pad_to_max_length
        self._lookup = keras.layers.StringLookup(
            vocabulary=vocabulary[len(RESERVED) - 1 :],  # [MASK] and the words: ids from 2
            mask_token=PAD,
            oov_token=UNK,
            num_oov_indices=1,
            output_mode="int",
        )

    def call(self, texts):
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if texts.shape.rank == 2:  # Keras string Input of shape (1,)
            texts = tf.squeeze(texts, axis=1)
        tokens = tokenize(texts)[:, : self.max_length]
        ids = tf.ragged.map_flat_values(lambda flat: tf.cast(self._lookup(flat), tf.int32), tokens)
        width = self.max_length if self.pad_to_max_length else None
        return ids.to_tensor(default_value=PAD_ID, shape=[None, width])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_length if self.pad_to_max_length else None)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"vocabulary": self.vocabulary, "max_length": self.max_length, "pad_to_max_length": self.pad_to_max_length}
        )
        return config


def token_ids(vocabulary: Vocabulary, texts: list[str], max_length: int) -> np.ndarray:
    """Convenience: padded ids of a list of strings, eagerly."""
    return WordTokenizer(vocabulary.tokens, max_length)(tf.constant(texts)).numpy()
