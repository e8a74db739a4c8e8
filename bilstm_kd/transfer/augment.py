"""Data augmentation for the transfer set (Tang et al. 2019, section 3.1) as TensorFlow ops.

For every word of a sentence draw X ~ U[0, 1): X < p_mask replaces the word with `[MASK]`; otherwise
X < p_mask + p_pos replaces it with a word of the same part-of-speech tag, drawn from the training set's
unigram distribution of that tag. Then, with probability p_ng, only a random n-gram of the sentence is
kept, n uniform in 1..max_ngram (the whole sentence when it is shorter than n). Sentence pairs augment the
first sentence only, the second only, or both, in turn from one round to the next.

Everything works on batches of ragged string tokens, so `augment_batch` runs eagerly, in a `tf.function`
and in a parallel `tf.data` map with identical results. Randomness comes from a counter-based hash
(splitmix64) of (seed, example index, round, sentence, word position, stream) rather than from stateful
or per-call stateless generators: a word's random numbers depend on nothing else, so the result does not
change with batch size, batch order, parallelism or sharding.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from bilstm_kd.text.pos import DEFAULT_POS_MODEL
from bilstm_kd.text.vocab import MASK

NO_TAG = -1


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """How the transfer set is augmented (the pipeline fills it from `--n_iter`, `--p_mask`, ...).

    Args:
        n_iter: augmentation rounds per training example (paper: 20 single sentence, 10 pairs); 0: none.
        p_mask: the probability of replacing a word with `[MASK]`.
        p_pos: the probability of replacing a word with a same-POS word of the training set.
        p_ng: the probability of keeping only a random n-gram of an augmented example.
        max_ngram: the largest n of n-gram sampling.
        pos_model: the spaCy pipeline that tags words for `p_pos`.
    """

    n_iter: int = 20
    p_mask: float = 0.1
    p_pos: float = 0.1
    p_ng: float = 0.25
    max_ngram: int = 5
    pos_model: str = DEFAULT_POS_MODEL


# Counters of the per-row random streams; per-word streams use 8 * position + {0, 1}, which never equals these.
_STREAM_DECIDE, _STREAM_CHOOSE = 0, 1
_STREAM_NGRAM_GATE, _STREAM_NGRAM_LENGTH, _STREAM_NGRAM_START = 2, 3, 4
_WORD_STREAMS = 8

_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB


def _mix(values: tf.Tensor) -> tf.Tensor:
    """The splitmix64 step: a bijection of uint64 with full avalanche (Steele et al. 2014)."""
    values = values + tf.constant(_GOLDEN_GAMMA, tf.uint64)
    values = tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, tf.constant(30, tf.uint64)))
    values = values * tf.constant(_MIX_1, tf.uint64)
    values = tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, tf.constant(27, tf.uint64)))
    values = values * tf.constant(_MIX_2, tf.uint64)
    return tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, tf.constant(31, tf.uint64)))


def _as_uint64(values) -> tf.Tensor:
    return tf.cast(tf.cast(values, tf.int64), tf.uint64)


def row_keys(seed: int, example_index: tf.Tensor, round_index: tf.Tensor, sentence_index: int = 0) -> tf.Tensor:
    """A 64-bit random key per (seed, example, round, sentence): the root of all of a row's random numbers."""
    keys = _mix(tf.fill(tf.shape(example_index), _as_uint64(seed)))
    for part in (example_index, round_index, tf.fill(tf.shape(example_index), sentence_index)):
        keys = _mix(tf.bitwise.bitwise_xor(keys, _as_uint64(part)))
    return keys


def hash_uniform(keys: tf.Tensor, counters: tf.Tensor) -> tf.Tensor:
    """Uniform float64 numbers in [0, 1), one per (key, counter) pair, as a pure function of both."""
    bits = _mix(tf.bitwise.bitwise_xor(keys, _as_uint64(counters)))
    return tf.cast(tf.bitwise.right_shift(bits, tf.constant(11, tf.uint64)), tf.float64) * (2.0**-53)


class ReplacementTable:
    """Per-tag unigram distributions of the training words, laid out for vectorized sampling.

    Entries are the distinct (tag, word) pairs of the training set, grouped by tag in `tag_names` order.
    `cumulative[i]` is the entry's tag id plus the within-tag cumulative probability, so the cumulative
    values of tag t run up to exactly t + 1 and a word of tag t is drawn as
    `searchsorted(cumulative, t + u, side="right")` with u ~ U[0, 1).

    Args:
        tag_names: the tags, sorted; a tag's id is its position.
        words: the word of each entry, grouped by tag.
        word_tags: the tag id of each entry (non-decreasing).
        counts: the training-set count of each (tag, word) entry, all positive.

    Example:
    >>> table = ReplacementTable.from_tagged([["a", "good", "film"]], [["DT", "JJ", "NN"]])
    >>> table.tag_names
    ('DT', 'JJ', 'NN')
    >>> table.probability("NN", "film")
    1.0
    """

    def __init__(
        self,
        tag_names: Sequence[str],
        words: Sequence[str],
        word_tags: Sequence[int] | np.ndarray,
        counts: Sequence[int] | np.ndarray,
    ):
        tag_names = tuple(tag_names)
        words = tuple(words)
        word_tags = np.asarray(word_tags, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        if list(tag_names) != sorted(set(tag_names)):
            raise ValueError(f"`tag_names` must be sorted and distinct, received tag_names={tag_names}")
        if not len(words) == len(word_tags) == len(counts):
            raise ValueError(
                f"`words`, `word_tags` and `counts` must have one entry each, received lengths "
                f"{len(words)}, {len(word_tags)} and {len(counts)}"
            )
        if len(counts) and (counts.min() <= 0):
            raise ValueError(f"`counts` must all be positive, received a count of {counts.min()}")
        if len(word_tags) and (np.any(np.diff(word_tags) < 0) or word_tags[0] < 0 or word_tags[-1] >= len(tag_names)):
            raise ValueError("`word_tags` must be non-decreasing tag ids below len(tag_names)")
        if len(set(np.unique(word_tags).tolist())) != len(tag_names):
            raise ValueError("every tag in `tag_names` needs at least one word")
        self.tag_names = tag_names
        self.words = words
        self.word_tags = word_tags
        self.counts = counts
        self._tag_ids = {tag: index for index, tag in enumerate(tag_names)}

    @classmethod
    def from_tagged(cls, tokens: Iterable[Sequence[str]], tags: Iterable[Sequence[str]]) -> ReplacementTable:
        """Counts (tag, word) pairs of tagged sentences.

        Args:
            tokens: the words of each sentence.
            tags: the tags of each sentence, one per word.
        """
        pair_counts: collections.Counter = collections.Counter()
        for sentence_index, (words, sentence_tags) in enumerate(zip(tokens, tags, strict=True)):
            if len(words) != len(sentence_tags):
                raise ValueError(
                    f"Sentence {sentence_index} has {len(words)} words but {len(sentence_tags)} tags: "
                    f"words={list(words)[:10]}, tags={list(sentence_tags)[:10]}"
                )
            pair_counts.update(zip(sentence_tags, words))
        entries = sorted(pair_counts.items())  # by tag, then word
        tag_names = tuple(sorted({tag for (tag, _), _ in entries}))
        tag_ids = {tag: index for index, tag in enumerate(tag_names)}
        return cls(
            tag_names=tag_names,
            words=[word for (_, word), _ in entries],
            word_tags=[tag_ids[tag] for (tag, _), _ in entries],
            counts=[count for _, count in entries],
        )

    def __len__(self) -> int:
        return len(self.words)

    @property
    def cumulative(self) -> np.ndarray:
        """Tag id + within-tag cumulative probability of every entry (float64, sorted)."""
        cumulative = np.zeros(len(self.counts), dtype=np.float64)
        boundaries = np.flatnonzero(np.diff(self.word_tags)) + 1
        for start, end in zip(np.r_[0, boundaries], np.r_[boundaries, len(self.counts)]):
            tag_counts = self.counts[start:end]
            cumulative[start:end] = np.cumsum(tag_counts) / tag_counts.sum() + self.word_tags[start]
            cumulative[end - 1] = self.word_tags[start] + 1.0  # exact, so no draw spills into the next tag
        return cumulative

    def probability(self, tag: str, word: str) -> float:
        """P(word | tag) in the training set."""
        tag_id = self._tag_ids.get(tag)
        if tag_id is None:
            return 0.0
        in_tag = self.word_tags == tag_id
        matches = in_tag & (np.asarray(self.words, dtype=object) == word)
        return float(self.counts[matches].sum() / self.counts[in_tag].sum())

    def tag_ids(self, tags: Sequence[Sequence[str]]) -> tf.RaggedTensor:
        """Tag strings -> ragged int32 tag ids; tags the table has never seen map to `NO_TAG` (not replaced)."""
        flat = [self._tag_ids.get(tag, NO_TAG) for sentence in tags for tag in sentence]
        row_lengths = [len(sentence) for sentence in tags]
        return tf.RaggedTensor.from_row_lengths(
            tf.constant(flat, dtype=tf.int32, shape=[len(flat)]), tf.constant(row_lengths, dtype=tf.int64)
        )

    def sample(self, tag_ids: tf.Tensor, uniforms: tf.Tensor) -> tf.Tensor:
        """Words drawn from P(word | tag), one per tag id (ids must be valid), given U[0, 1) numbers."""
        cumulative = tf.constant(self.cumulative, dtype=tf.float64)
        # Keep t + u below t + 1 in float64 whatever u is, so a draw never lands in the next tag.
        targets = tf.cast(tag_ids, tf.float64) + tf.minimum(tf.cast(uniforms, tf.float64), 1.0 - 1e-9)
        index = tf.searchsorted(cumulative, targets, side="right")
        index = tf.minimum(index, len(self.words) - 1)
        return tf.gather(tf.constant(self.words, dtype=tf.string), index)


def augment_batch(
    tokens: tf.RaggedTensor,
    tag_ids: tf.RaggedTensor | None,
    example_index: tf.Tensor,
    round_index: tf.Tensor,
    config: Augmentation,
    seed: int,
    table: ReplacementTable | None = None,
    sentence_index: int = 0,
    active: tf.Tensor | None = None,
) -> tf.RaggedTensor:
    """Augments a batch of tokenized sentences: masking, POS-guided replacement, then n-gram sampling.

    The random numbers of row i depend only on (`seed`, `example_index[i]`, `round_index[i]`,
    `sentence_index`) and the word positions, so the output is the same in any batch, eagerly or traced.

    Args:
        tokens: string tokens, shape `[batch, (words)]`.
        tag_ids: tag ids of `table` aligned with `tokens` (`NO_TAG` for words never replaced); may be None
            when `config.p_pos == 0`.
        example_index: int, shape `[batch]`: the training example each row comes from.
        round_index: int, shape `[batch]`: the augmentation round of each row.
        config: `p_mask`, `p_pos`, `p_ng` and `max_ngram` are used.
        seed: the run's seed.
        table: the per-tag unigram distributions; required when `config.p_pos > 0`.
        sentence_index: 0 for the first sentence of a pair (or a single sentence), 1 for the second, so
            the two sentences of a pair get independent random numbers.
        active: bool, shape `[batch]`: rows to augment; the others are returned unchanged (pair modes).

    Returns:
        The augmented tokens, shape `[batch, (words)]`.

    Example:
    >>> tokens = tf.ragged.constant([["a", "good", "film"], ["bad"]])
    >>> config = Augmentation(p_mask=1.0, p_pos=0.0, p_ng=0.0)
    >>> augment_batch(tokens, None, tf.constant([0, 1]), tf.constant([0, 0]), config, seed=0).to_list()
    [[b'[MASK]', b'[MASK]', b'[MASK]'], [b'[MASK]']]
    """
    if config.p_pos > 0 and (table is None or tag_ids is None):
        raise ValueError(
            f"POS-guided replacement (p_pos={config.p_pos}) needs a `table` and `tag_ids`; pass them or use p_pos=0"
        )
    example_index = tf.cast(example_index, tf.int64)
    round_index = tf.cast(round_index, tf.int64)
    words = tokens.flat_values
    row_of_word = tokens.value_rowids()
    flat_offsets = tf.range(tf.size(words, out_type=tf.int64), dtype=tf.int64)
    positions = flat_offsets - tf.gather(tokens.row_starts(), row_of_word)  # of each word in its sentence

    keys = row_keys(seed, example_index, round_index, sentence_index)
    word_keys = tf.gather(keys, row_of_word)
    row_active = tf.ones_like(example_index, dtype=tf.bool) if active is None else tf.cast(active, tf.bool)
    word_active = tf.gather(row_active, row_of_word)

    # One draw decides each word: [0, p_mask) masks, [p_mask, p_mask + p_pos) replaces.
    decision = hash_uniform(word_keys, _WORD_STREAMS * positions + _STREAM_DECIDE)
    masked = word_active & (decision < config.p_mask)
    words = tf.where(masked, tf.constant(MASK), words)
    if config.p_pos > 0 and len(table) > 0:
        flat_tags = tf.cast(tag_ids.flat_values, tf.int64)
        replaced = word_active & ~masked & (decision < config.p_mask + config.p_pos) & (flat_tags != NO_TAG)
        choice = hash_uniform(word_keys, _WORD_STREAMS * positions + _STREAM_CHOOSE)
        substitutes = table.sample(tf.maximum(flat_tags, 0), choice)
        words = tf.where(replaced, substitutes, words)

    # N-gram sampling: n uniform in 1..max_ngram (capped at the length), start uniform over valid starts.
    lengths = tokens.row_lengths()
    take_ngram = row_active & (lengths > 0) & (hash_uniform(keys, _STREAM_NGRAM_GATE) < config.p_ng)
    drawn_n = 1 + tf.cast(tf.floor(hash_uniform(keys, _STREAM_NGRAM_LENGTH) * config.max_ngram), tf.int64)
    n = tf.minimum(tf.minimum(drawn_n, config.max_ngram), lengths)
    starts = tf.cast(tf.floor(hash_uniform(keys, _STREAM_NGRAM_START) * tf.cast(lengths - n + 1, tf.float64)), tf.int64)
    starts = tf.minimum(starts, tf.maximum(lengths - n, 0))
    word_start, word_n = tf.gather(starts, row_of_word), tf.gather(n, row_of_word)
    in_ngram = (positions >= word_start) & (positions < word_start + word_n)
    keep = ~tf.gather(take_ngram, row_of_word) | in_ngram
    return tf.ragged.boolean_mask(tokens.with_flat_values(words), tokens.with_flat_values(keep))


def pair_modes(round_index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Which sentence of a pair each round augments: the first, the second, then both, in turn.

    Returns:
        Two bool tensors shaped like `round_index`: (augment the first sentence, augment the second).
    """
    mode = tf.math.floormod(tf.cast(round_index, tf.int64), 3)
    return mode != 1, mode != 0


def augment_pair_batch(
    tokens: tuple[tf.RaggedTensor, tf.RaggedTensor],
    tag_ids: tuple[tf.RaggedTensor | None, tf.RaggedTensor | None],
    example_index: tf.Tensor,
    round_index: tf.Tensor,
    config: Augmentation,
    seed: int,
    table: ReplacementTable | None = None,
) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Augments sentence pairs: round r changes the first sentence if r % 3 == 0, the second if
    r % 3 == 1 and both if r % 3 == 2 (see `augment_batch` for the arguments)."""
    augment_first, augment_second = pair_modes(round_index)
    first = augment_batch(
        tokens[0], tag_ids[0], example_index, round_index, config, seed, table, sentence_index=0, active=augment_first
    )
    second = augment_batch(
        tokens[1], tag_ids[1], example_index, round_index, config, seed, table, sentence_index=1, active=augment_second
    )
    return first, second


def join_tokens(tokens: tf.RaggedTensor) -> tf.Tensor:
    """Tokens -> text with single spaces (the transfer set's text form; `[MASK]` is written literally)."""
    return tf.strings.reduce_join(tokens, axis=-1, separator=" ")
