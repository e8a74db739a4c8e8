"""The student's word vocabulary and tokenization.

`tokenize` is the one implementation of the student's tokenization. It is made of TensorFlow string ops,
so the same code runs eagerly, inside `tf.data` pipelines and inside the exported SavedModel. It matches
GLUE's already-tokenized text (lowercased words, punctuation and clitics such as "'s" and "n't" split off)
and brings raw text to the same form: "It's GREAT!!!" -> it 's great !!!, "don't" -> do n't. Accented
letters and emoji stay as they are (a run of emoji or of punctuation is one token), a web address becomes
the word `url` and an e-mail address `email` (each one is otherwise a word seen once), and a number keeps
its decimal point or thousands separator (3.5, 1,000). `[MASK]` (any case) stays one token: augmentation
writes it into the transfer set.

That is the `glue` tokenizer, the default. The `regex` tokenizer is the one an on-device runtime can run
as it is (MediaPipe Tasks' `TextClassifier`, see `export.mediapipe`): the text is split at every match of
`RUNTIME_DELIMITER` (RE2 syntax; letters, digits, `_` and `'` make words, so "don't" and "it's" stay whole,
punctuation is dropped) and nothing is lowercased or normalised. Case is decided by the vocabulary
instead: its words are the lowercased training words, and each word is looked up under three spellings,
`good`, `Good` and `GOOD`, all with the word's id ("GooD" is unknown), at training and in the exported
runtime vocabulary alike; the augmentation's `[MASK]` splits to the spelling MASK, which both map to the mask
id. So the student trains on exactly the ids the runtime computes from the same text (MediaPipe reads a text
up to its first NUL character, a C string; training treats NUL as a space).

What a word is, for both tokenizers and any Unicode string, is decided once here. Words are separated by
every Unicode space (category Z: the no-break, narrow and ideographic spaces, U+2028 and U+2029 among them),
every control character (Cc: tabs, newlines, NUL, U+0085) and the zero-width space U+200B; the `glue`
tokenizer drops the other format characters (Cf: zero-width joiners, byte-order marks, direction marks, soft
hyphens), the `regex` one splits at them as the runtime does. Combining marks belong to their word, so
"café" in NFC (é) and in NFD (e + U+0301) is one word either way, and the vocabulary looks every word up
under both forms: the same id without a normalisation op, which the phone runtime has not. So no token holds
a space, control or format character (`is_token`): a vocabulary can never hold a line its file cannot.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from bilstm_kd.text import TOKENIZERS

PAD = "[PAD]"
UNK = "[UNK]"
MASK = "[MASK]"
RESERVED = (PAD, UNK, MASK)
PAD_ID, UNK_ID, MASK_ID = 0, 1, 2

# A private-use character stands in for [MASK] while punctuation is split off, so "[mask]." keeps the
# mask whole (the same character in a user's text separates words). The rules are also written to the
# TFLite metadata for apps that tokenize on their own.
_MASK_PLACEHOLDER = "\ue000"
# RE2 classes: the characters that separate words, and the format characters the `glue` tokenizer drops.
SEPARATORS = rf"[\p{{Z}}\p{{Cc}}\x{{200B}}{_MASK_PLACEHOLDER}]+"
DROPPED = r"\p{Cf}+"
# Separators first: TensorFlow's UTF-8 lowercasing stops at a NUL character.
TOKENIZATION_RULES = (
    ("replace", SEPARATORS, " "),
    ("replace", DROPPED, ""),
    ("lowercase", "utf-8"),
    ("replace", r"\[mask\]", f" {_MASK_PLACEHOLDER} "),
    ("replace", r"(?:https?://|www\.)\S+", " url "),
    ("replace", r"[\pL\pM\pN._%+\-]+@[\pL\pM\pN\-]+(?:\.[\pL\pM\pN\-]+)+", " email "),
    # A letter (with its accents: NFD) before the clitic, a word's end after it (RE2's \b is ASCII only).
    ("replace", r"([\pL\pM])n't([^\pL\pM\pN_]|$)", r"\1 n't\2"),
    ("replace", r"([\pL\pM])'(s|re|ll|ve|d|m)([^\pL\pM\pN_]|$)", r"\1 '\2\3"),
    ("replace", rf"([^\pL\pN\pM\s'_\-{_MASK_PLACEHOLDER}]+)", r" \1 "),
    ("replace", r"(\pN) ([.,]) (\pN)", r"\1\2\3"),
    ("split", "whitespace"),
    ("token", _MASK_PLACEHOLDER, MASK),
)


# The runtime's delimiter: anything but letters, combining marks, digits, `_` and `'`. `\pL`/`\pN` (not
# `\w`, which is ASCII in RE2) keep accented words whole, `\pM` the NFD ones; the pattern cannot match the
# empty string (that makes the runtime hang).
RUNTIME_DELIMITER = r"[^\pL\pM\pN_']+"
# The `regex` tokenizer reads the augmentation's "[MASK]" as the word MASK (brackets are delimiters), which the
# runtime's vocabulary also maps to the [MASK] id: the runtime needs no rule of its own for it. So the spelling
# MASK means [MASK] in a user's text too (the words "mask" and "Mask" keep their own id).
_REGEX_MASK = "MASK"
_CLITIC = re.compile(r"(\w) (n't|'(?:s|re|ll|ve|d|m))(?=\s|$)", re.IGNORECASE)


def check_tokenizer(tokenizer: str) -> None:
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"`tokenizer` must be one of {TOKENIZERS}, received tokenizer={tokenizer!r}")


def tokenization_rules(tokenizer: str = "glue") -> tuple:
    """What a tokenizer does, as data: written to metadata and into the fingerprints of cached stages."""
    check_tokenizer(tokenizer)
    if tokenizer == "glue":
        return TOKENIZATION_RULES
    return (("split", RUNTIME_DELIMITER), ("lookup", "word, Word, WORD"), ("token", _REGEX_MASK, MASK))


def tokenize(texts: tf.Tensor | str | list[str], tokenizer: str = "glue") -> tf.RaggedTensor:
    """Splits strings into word tokens.

    Args:
        texts: a string or a 1-D batch of strings.
        tokenizer: `glue` (lowercased, punctuation and clitics split off) or `regex` (split at
            `RUNTIME_DELIMITER`, case kept); see the module's docstring.

    Returns:
        A `tf.RaggedTensor` of string tokens, shape `[batch, (words)]` (or `[(words)]` for a scalar).
    """
    check_tokenizer(tokenizer)
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    placeholder = _REGEX_MASK
    if tokenizer == "regex":
        texts = tf.strings.regex_replace(texts, RUNTIME_DELIMITER, " ")
    else:
        placeholder = _MASK_PLACEHOLDER
        for rule in TOKENIZATION_RULES:
            if rule[0] == "lowercase":
                texts = tf.strings.lower(texts, encoding=rule[1])
            elif rule[0] == "replace":
                texts = tf.strings.regex_replace(texts, rule[1], rule[2])
    tokens = tf.strings.split(texts)
    return tf.ragged.map_flat_values(lambda flat: tf.where(flat == placeholder, MASK, flat), tokens)


def rejoin_clitics(text: str) -> str:
    """Undoes the Penn Treebank split of GLUE's SST-2 text: "do n't" -> "don't", "it 's" -> "it's", so that
    the `regex` tokenizer sees pre-tokenized training text as it sees raw text."""
    return _CLITIC.sub(r"\1\2", text)


def is_token(token: str) -> bool:
    """Whether `token` can be a word of a vocabulary: not empty, and no space, control or format character in
    it (Unicode categories Z, Cc, Cf). Every token `tokenize` gives is one."""
    return bool(token) and not any(_is_separator_or_dropped(character) for character in token)


def _is_separator_or_dropped(character: str) -> bool:
    category = unicodedata.category(character)
    return category[0] == "Z" or category in ("Cc", "Cf")


def _both_forms(spelling: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys((spelling, unicodedata.normalize("NFD", spelling))))


def spellings(word: str, tokenizer: str = "regex") -> tuple[str, ...]:
    """The spellings a vocabulary word is looked up under, each in NFC and NFD: `glue`, the word itself;
    `regex`, the word as is, capitalised and in upper case."""
    cased = (word,) if tokenizer == "glue" else (word, word[:1].upper() + word[1:], word.upper())
    return tuple(dict.fromkeys(form for spelling in cased for form in _both_forms(spelling)))


def lookup_table(tokens: Sequence[str], tokenizer: str = "glue") -> list[tuple[str, int]]:
    """`(spelling, id)` of every string the tokenizer maps to a word id ([PAD] and [UNK] left out).

    Each word under its `spellings`, [MASK] as itself (and, for `regex`, as the runtime's MASK); a spelling two
    words share (rare: "ß".upper() is "SS") keeps the more frequent word's (lower) id.
    """
    check_tokenizer(tokenizer)
    table: dict[str, int] = {MASK: MASK_ID} if tokenizer == "glue" else {MASK: MASK_ID, _REGEX_MASK: MASK_ID}
    for index, word in enumerate(tokens[len(RESERVED) :], start=len(RESERVED)):
        for spelling in spellings(word, tokenizer):
            table.setdefault(spelling, index)
    return list(table.items())


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
        refused = next(((i, token) for i, token in enumerate(self.tokens) if not is_token(token)), None)
        if refused:
            raise ValueError(f"Token {refused[0] + 1} of the vocabulary is not one word (`is_token`): {refused[1]!r}")

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_counts(cls, counts: collections.Counter, min_count: int = 1, max_size: int = 0) -> Vocabulary:
        """Most frequent words first (ties alphabetical), keeping those seen at least `min_count` times.

        A string that is not a token (`is_token`; a tokenizer never gives one) is left out: it stays unknown."""
        words = sorted(
            (word for word, count in counts.items() if count >= min_count and word not in RESERVED and is_token(word)),
            key=lambda word: (-counts[word], word),
        )
        if max_size:
            words = words[: max_size - len(RESERVED)]
        return cls(RESERVED + tuple(words))

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], min_count: int = 1, max_size: int = 0, tokenizer: str = "glue"
    ) -> Vocabulary:
        return cls.from_counts(count_words(texts, tokenizer=tokenizer), min_count=min_count, max_size=max_size)

    def extended(self, words: Iterable[str], tokenizer: str = "glue") -> Vocabulary:
        """This vocabulary followed by the new ones among `words`, in their order.

        A word is added in the form the tokenizer gives it (lowercased); words the tokenizer would split
        or drop ("New_York" stays, "New York" and "" do not) can never be looked up and are skipped.
        """
        words = list(words)
        known = set(self.tokens)
        added = []
        if words:
            for tokens in tokenize(tf.constant(words), tokenizer).to_list():
                if len(tokens) == 1 and (token := _vocabulary_word(tokens[0].decode("utf-8"), tokenizer)) not in known:
                    known.add(token)
                    added.append(token)
        return Vocabulary(self.tokens + tuple(added))

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8", newline="\n") as file:
            file.writelines(f"{token}\n" for token in self.tokens)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Reads a `vocab.txt` written by `save`: one token per line, reserved tokens first."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"No vocabulary file at {path}")
        with open(path, encoding="utf-8", newline="\n") as file:
            tokens = []
            for line_number, line in enumerate(file, start=1):
                token = line.removesuffix("\n")
                if not is_token(token):
                    raise ValueError(f"{path}, line {line_number}: a token must be one non-empty word, got {token!r}")
                tokens.append(token)
        try:
            return cls(tuple(tokens))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def _vocabulary_word(token: str, tokenizer: str) -> str:
    """The vocabulary's form of a token: NFC, and `regex` words lowercase ([MASK] stays as it is)."""
    return unicodedata.normalize("NFC", token if tokenizer == "glue" or token == MASK else token.lower())


def count_words(texts: Iterable[str], batch_size: int = 65536, tokenizer: str = "glue") -> collections.Counter:
    """Counts the vocabulary words of `texts` (tokenized in large batches for speed)."""
    counts: collections.Counter = collections.Counter()
    batch: list[str] = []

    def flush() -> None:
        tokens = tokenize(tf.constant(batch), tokenizer).flat_values.numpy()
        counts.update(_vocabulary_word(token.decode("utf-8"), tokenizer) for token in tokens)
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

    The layer runs `tokenize`, truncates to `max_length` words and looks the words up in the vocabulary
    (`lookup_table`). Unknown words map to 1 (`[UNK]`); the output is padded with 0 to the longest sentence
    in the batch (or to `max_length` with `pad_to_max_length=True`). An empty string gives an all-padding row.

    Args:
        vocabulary: the tokens, reserved tokens first (a `Vocabulary`'s `tokens`).
        max_length: the most words kept per sentence.
        pad_to_max_length: pad every batch to `max_length` instead of its longest sentence.
        tokenizer: `glue` or `regex` (see the module's docstring).

    Example:
    >>> tokenizer = WordTokenizer(["[PAD]", "[UNK]", "[MASK]", "good", "film"], max_length=8)
    >>> tokenizer(tf.constant(["A good film.", ""])).numpy()
    array([[1, 3, 4, 1],
           [0, 0, 0, 0]], dtype=int32)
    """

    def __init__(
        self,
        vocabulary: list[str] | tuple[str, ...],
        max_length: int,
        pad_to_max_length: bool = False,
        tokenizer: str = "glue",
        **kwargs,
    ):
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        Vocabulary(tuple(vocabulary))  # validates the reserved tokens
        if max_length < 1:
            raise ValueError(f"`max_length` must be at least 1, received max_length={max_length}")
        check_tokenizer(tokenizer)
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.pad_to_max_length = pad_to_max_length
        self.tokenizer = tokenizer
        spellings_, ids = zip(*lookup_table(vocabulary, tokenizer))
        # Spelling -> its position + 1 (0: out of vocabulary) -> the word id.
        self._lookup = keras.layers.StringLookup(vocabulary=list(spellings_), num_oov_indices=1, output_mode="int")
        self._ids = tf.constant((UNK_ID, *ids), tf.int32)

    def call(self, texts):
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if texts.shape.rank == 2:  # Keras string Input of shape (1,)
            texts = tf.squeeze(texts, axis=1)
        tokens = tokenize(texts, self.tokenizer)[:, : self.max_length]
        ids = tf.ragged.map_flat_values(lambda flat: tf.gather(self._ids, self._lookup(flat)), tokens)
        width = self.max_length if self.pad_to_max_length else None
        return ids.to_tensor(default_value=PAD_ID, shape=[None, width])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_length if self.pad_to_max_length else None)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": self.vocabulary,
                "max_length": self.max_length,
                "pad_to_max_length": self.pad_to_max_length,
                "tokenizer": self.tokenizer,
            }
        )
        return config


def token_ids(vocabulary: Vocabulary, texts: list[str], max_length: int, tokenizer: str = "glue") -> np.ndarray:
    """Convenience: padded ids of a list of strings, eagerly."""
    return WordTokenizer(vocabulary.tokens, max_length, tokenizer=tokenizer)(tf.constant(texts)).numpy()
