"""The teacher model: saving and reloading, argument checks, size, ensembles."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from conftest import MAX_LENGTH, VOCABULARY, shared_teacher, tiny_backbone, tiny_teacher, tiny_tokenizer

from bilstm_kd.teacher.inference import encode_texts, teacher_logits
from bilstm_kd.teacher.model import BertTeacher, TeacherEnsemble, teacher_size
from bilstm_kd.teacher.saving import save_teacher


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_teacher_saves_and_reloads(tmp_path, pooling):
    teacher = shared_teacher(pooling=pooling, num_classes=3)
    path = str(tmp_path / "teacher.keras")
    save_teacher(teacher, path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, BertTeacher)
    assert (restored.pooling, restored.num_classes, restored.sequence_length) == (pooling, 3, MAX_LENGTH)
    tokenizer = restored.preprocessor.tokenizer
    assert tokenizer.get_vocabulary() == VOCABULARY
    assert tokenizer.lowercase and tokenizer.special_tokens_in_strings
    inputs = encode_texts(teacher.preprocessor, ["a good film", "a [MASK] movie"]).batch(np.arange(2))
    np.testing.assert_allclose(restored(inputs), teacher(inputs), atol=1e-6)
    clone = BertTeacher.from_config(teacher.get_config())
    assert clone.get_config() == teacher.get_config()
    with pytest.raises(ValueError, match=r"teacher\.h5"):
        save_teacher(teacher, str(tmp_path / "teacher.h5"))


def test_constructor_validates_arguments():
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=MAX_LENGTH)
    with pytest.raises(ValueError, match="pooling='max'"):
        BertTeacher(tiny_backbone(), preprocessor, num_classes=2, pooling="max")
    long_preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tiny_tokenizer(), sequence_length=64)
    with pytest.raises(ValueError, match="sequence_length=64"):
        BertTeacher(tiny_backbone(), long_preprocessor, num_classes=2)


def matrix_product_flops(model, sequence_length):
    """2 x the multiply-adds of every matrix product in the model's traced graph for one example (an oracle
    that counts the ops TensorFlow runs, independent of the formula in `teacher_size`)."""
    spec = {
        "token_ids": tf.TensorSpec([1, sequence_length], tf.int32),
        "segment_ids": tf.TensorSpec([1, sequence_length], tf.int32),
        "padding_mask": tf.TensorSpec([1, sequence_length], tf.bool),
    }
    graph = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(spec).graph
    total = 0
    for op in graph.get_operations():
        shapes = [tensor.shape.as_list() for tensor in op.inputs[:2]]
        if op.type == "Einsum":
            inputs_equation = op.get_attr("equation").decode().split("->")[0].split(",")
            sizes = {letter: size for term, shape in zip(inputs_equation, shapes) for letter, size in zip(term, shape)}
            total += 2 * int(np.prod(list(sizes.values())))
        elif op.type in ("MatMul", "BatchMatMulV2"):
            transposed = ("transpose_a", "transpose_b") if op.type == "MatMul" else ("adj_x", "adj_y")
            rows, inner = shapes[0][-2:][:: -1 if op.get_attr(transposed[0]) else 1]
            columns = shapes[1][-2] if op.get_attr(transposed[1]) else shapes[1][-1]
            total += 2 * int(np.prod(shapes[0][:-2], dtype=np.int64)) * rows * inner * columns
    return total


def test_teacher_size_counts_parameters_and_flops():
    teacher = shared_teacher(num_classes=2)
    size = teacher_size(teacher, sequence_length=10)
    assert size["parameters"] == teacher.count_params()
    assert size["flops_per_example"] == matrix_product_flops(teacher, 10)
    assert teacher_size(teacher, 20)["flops_per_example"] > 2 * size["flops_per_example"]  # attention is quadratic


def test_an_ensemble_answers_with_the_mean_of_its_members_logits():
    # The same name, as teachers saved by two runs have.
    first, second = tiny_teacher(pooling="cls", name="bert_teacher"), tiny_teacher(pooling="mean", name="bert_teacher")
    ensemble = TeacherEnsemble([first, second])
    texts = ["a good film", "a [MASK] film .", "the movie was not very awful !"]
    first_logits, second_logits = teacher_logits(first, texts), teacher_logits(second, texts)
    assert np.abs(first_logits - second_logits).min() > 1e-3  # the mean is neither member's answer
    np.testing.assert_allclose(teacher_logits(ensemble, texts), (first_logits + second_logits) / 2, atol=1e-6)

    size, member_size = teacher_size(ensemble, 10), teacher_size(first, 10)
    assert size["parameters"] == first.count_params() + second.count_params()
    assert size["embedding_parameters"] == 2 * member_size["embedding_parameters"] == 2 * len(VOCABULARY) * 8
    assert size["flops_per_example"] == member_size["flops_per_example"] + teacher_size(second, 10)["flops_per_example"]
    with pytest.raises(ValueError, match="must share the vocabulary, sequence length and classes"):
        TeacherEnsemble([first, shared_teacher(num_classes=3)])
