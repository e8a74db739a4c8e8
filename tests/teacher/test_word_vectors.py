"""Static word vectors for the student from the pretrained teacher."""

import numpy as np
import pytest
from conftest import VOCABULARY, tiny_backbone

from bilstm_kd.teacher.word_vectors import whole_words, word_vectors


def test_word_vectors_are_each_word_alone_through_the_backbone_mean_pooled(preset_directory):
    words = ["film", "cafes", "good", "zebra"]  # "cafes" is two pieces (cafe ##s); "zebra" only [UNK]
    vectors, known = word_vectors(preset_directory, words, batch_size=3)
    assert vectors.shape == (4, 8) and vectors.dtype == np.float32
    assert known.tolist() == [True, True, True, False]
    backbone = tiny_backbone()
    ids = {"film": [2, 10, 3], "cafes": [2, 21, 22, 3], "good": [2, 12, 3]}
    for word, token_ids in ids.items():
        inputs = {
            "token_ids": np.array([token_ids], np.int32),
            "segment_ids": np.zeros([1, len(token_ids)], np.int32),
            "padding_mask": np.ones([1, len(token_ids)], bool),
        }
        expected = np.asarray(backbone(inputs)["sequence_output"]).mean(axis=1)[0]
        np.testing.assert_allclose(vectors[words.index(word)], expected, atol=1e-5)


def test_whole_words_leave_out_word_piece_continuations_and_special_tokens(preset_directory):
    words = whole_words(preset_directory)
    assert words == [
        token for token in VOCABULARY if token not in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##s")
    ]


def test_teacher_embeddings_reduce_to_the_student_dimension(preset_directory):
    from bilstm_kd.teacher import word_vectors as teacher_vectors
    from bilstm_kd.text.embeddings import VectorsSource, build_embeddings, build_vocabulary

    vectors = VectorsSource("teacher", dimension=3, teacher=preset_directory, teacher_vectors=teacher_vectors)
    vocabulary = build_vocabulary(["zebra film", "good"], words_from_vectors=4, vectors=vectors)
    assert vocabulary.tokens[-4:] == ("[", "]", "mask", "a")  # the teacher's first whole words join
    matrix = build_embeddings(vectors, vocabulary)
    assert matrix.weights.shape == (len(vocabulary), 3)
    assert matrix.found == len(vocabulary.tokens) - 3 - 1  # every word but the reserved ones and "zebra"
    assert "--teacher=" in matrix.source and np.all(matrix.weights[0] == 0.0)
    # Principal components: the known words' vectors are centred and their spread is largest first.
    known_rows = [index for index, token in enumerate(vocabulary.tokens) if index >= 3 and token != "zebra"]
    spread = matrix.weights[known_rows].std(axis=0)
    np.testing.assert_allclose(matrix.weights[known_rows].mean(axis=0), 0.0, atol=1e-5)
    assert spread[0] >= spread[1] >= spread[2] > 0
    with pytest.raises(ValueError, match="--teacher"):
        build_embeddings(VectorsSource("teacher", dimension=3, teacher_vectors=teacher_vectors), vocabulary)
    with pytest.raises(ValueError, match="teacher_vectors"):  # text/ does not import the teacher itself
        build_embeddings(VectorsSource("teacher", dimension=3, teacher=preset_directory), vocabulary)
