"""MPNetBackbone: the forward pass against an independent NumPy one, relative-position buckets, padding,
serialization (config, .keras, presets), mixed precision and argument checks."""

import functools
import inspect

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from numpy_mpnet import TINY, batch_inputs, hf_weights_of, numpy_buckets, numpy_forward

from bilstm_kd.teacher.mpnet import MPNetBackbone
from bilstm_kd.teacher.mpnet.layers import relative_position_buckets


def random_backbone(seed=0, **kwargs):
    """The tiny backbone with every weight drawn at a scale where attention, bias and masks all matter."""
    keras.utils.set_random_seed(seed)
    backbone = MPNetBackbone(**{**TINY, **kwargs})
    rng = np.random.default_rng(seed)
    backbone.set_weights([rng.normal(scale=0.4, size=weight.shape).astype("float32") for weight in backbone.weights])
    bias = backbone.get_layer("relative_position_bias").embeddings
    bias.assign(3 * bias.numpy())  # a bias large enough to move the attention visibly
    return backbone


@functools.cache
def shared_backbone():
    return random_backbone()


def outputs_of(backbone, inputs):
    outputs = backbone(inputs)
    return {name: np.asarray(value, np.float32) for name, value in outputs.items()}


# Hand-computed T5 buckets (key position minus query position -> bucket). With 32 buckets and max distance 128:
# a side has 16 buckets, distances 0-7 get their own, distance d >= 8 gets 8 + floor(8 * log(d / 8) / log(16)),
# i.e. 8 + floor(2 * log2(d / 8)), capped at 15; keys after the query (positive) add 16.
BUCKETS_32_128 = {
    0: 0, -1: 1, 1: 17, -3: 3, 3: 19, -7: 7, 7: 23,
    -8: 8, 8: 24, -11: 8, -12: 9, 12: 25,  # 2 * log2(12 / 8) = 1.17
    -16: 10, 16: 26, -22: 10, -23: 11,  # 2 * log2(23 / 8) = 3.05
    -32: 12, -45: 12, -46: 13, 64: 30, -64: 14, -90: 14, -91: 15,
    -127: 15, -128: 15, 128: 31, -1000: 15, 1000: 31,
}  # fmt: skip
# 8 buckets, max distance 5: a side has 4 buckets, distances 0-1 exact, d >= 2 gets 2 + floor(2 log(d / 2) / log 2.5).
BUCKETS_8_5 = {0: 0, -1: 1, 1: 5, -2: 2, -3: 2, 3: 6, -4: 3, 4: 7, -5: 3, -40: 3, 40: 7}


@pytest.mark.parametrize(("num_buckets", "max_distance", "expected"), [(32, 128, BUCKETS_32_128), (8, 5, BUCKETS_8_5)])
def test_relative_position_buckets_match_hand_computed_values(num_buckets, max_distance, expected):
    relative_positions = np.array(list(expected), np.int32)
    buckets = np.asarray(relative_position_buckets(relative_positions, num_buckets, max_distance))
    assert dict(zip(expected, buckets.tolist())) == expected
    # The test's own NumPy buckets, used by the reference forward pass, agree too.
    assert dict(zip(expected, numpy_buckets(relative_positions, num_buckets, max_distance).tolist())) == expected


@pytest.mark.parametrize(("num_buckets", "max_distance"), [(32, 128), (8, 5)])
def test_outputs_match_independent_numpy_forward_pass(num_buckets, max_distance):
    backbone = random_backbone(relative_attention_num_buckets=num_buckets, relative_attention_max_distance=max_distance)
    inputs = batch_inputs()
    sequence, pooled = numpy_forward(
        hf_weights_of(backbone),
        inputs["token_ids"],
        inputs["padding_mask"],
        num_buckets=num_buckets,
        max_distance=max_distance,
    )
    outputs = outputs_of(backbone, inputs)
    assert outputs["sequence_output"].shape == (2, 10, TINY["hidden_dim"])
    assert outputs["pooled_output"].shape == (2, TINY["hidden_dim"])
    np.testing.assert_allclose(outputs["sequence_output"], sequence, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(outputs["pooled_output"], pooled, atol=1e-5, rtol=1e-5)
    # The check can fail: without the relative position bias the outputs are far from the NumPy ones.
    backbone.get_layer("relative_position_bias").embeddings.assign(np.zeros([num_buckets, TINY["num_heads"]]))
    assert np.abs(outputs_of(backbone, inputs)["sequence_output"] - sequence).max() > 1e-2


def test_sentence_alone_equals_its_row_in_a_padded_batch():
    backbone = shared_backbone()
    inputs = batch_inputs()
    batch = outputs_of(backbone, inputs)
    length = int(inputs["padding_mask"][0].sum())
    alone = outputs_of(backbone, {name: values[:1, :length] for name, values in inputs.items()})
    np.testing.assert_allclose(alone["sequence_output"][0], batch["sequence_output"][0, :length], atol=1e-6)
    np.testing.assert_allclose(alone["pooled_output"][0], batch["pooled_output"][0], atol=1e-6)
    # Whatever sits under the padding, and the (ignored) segment ids, change nothing.
    noisy = dict(inputs, segment_ids=np.ones_like(inputs["segment_ids"]))
    noisy["token_ids"] = np.where(inputs["padding_mask"], inputs["token_ids"], 17)
    noisy_outputs = outputs_of(backbone, noisy)
    np.testing.assert_allclose(
        noisy_outputs["sequence_output"][0, :length], batch["sequence_output"][0, :length], atol=1e-6
    )
    np.testing.assert_allclose(noisy_outputs["sequence_output"][1], batch["sequence_output"][1], atol=1e-6)


def test_padding_mask_may_be_bool_or_int():
    backbone = shared_backbone()
    inputs = batch_inputs()
    as_int = dict(inputs, padding_mask=inputs["padding_mask"].astype(np.int32))
    np.testing.assert_array_equal(
        outputs_of(backbone, inputs)["sequence_output"], outputs_of(backbone, as_int)["sequence_output"]
    )


def test_attributes_the_package_reads():
    backbone = shared_backbone()
    assert backbone.token_embedding.embeddings.shape == (TINY["vocabulary_size"], TINY["hidden_dim"])
    assert (backbone.hidden_dim, backbone.intermediate_dim, backbone.num_layers, backbone.num_heads) == (8, 16, 2, 2)
    assert backbone.max_sequence_length == 16
    # Learned positions for 16 tokens after the pad_token_id + 1 offset, as Hugging Face's 514 for 512.
    assert backbone.get_layer("position_embedding").embeddings.shape == (18, 8)
    assert backbone.get_layer("pooled_dense").kernel.shape == (8, 8)
    assert sorted(backbone.input) == ["padding_mask", "segment_ids", "token_ids"]
    assert sorted(backbone.output) == ["pooled_output", "sequence_output"]


def test_get_config_holds_exactly_the_constructor_arguments_and_round_trips():
    backbone = shared_backbone()
    config = backbone.get_config()
    arguments = set(inspect.signature(MPNetBackbone.__init__).parameters) - {"self", "kwargs"}
    assert set(config) == arguments | {"name", "trainable"}
    assert {name: config[name] for name in TINY} == TINY
    restored = MPNetBackbone.from_config(config)
    restored.set_weights(backbone.get_weights())
    inputs = batch_inputs()
    for name, values in outputs_of(restored, inputs).items():
        np.testing.assert_array_equal(values, outputs_of(backbone, inputs)[name])


def test_keras_file_round_trip(tmp_path):
    backbone = shared_backbone()
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, MPNetBackbone)
    inputs = batch_inputs()
    for name, values in outputs_of(restored, inputs).items():
        np.testing.assert_array_equal(values, outputs_of(backbone, inputs)[name])


def test_preset_round_trip(tmp_path):
    backbone = shared_backbone()
    directory = str(tmp_path / "preset")
    backbone.save_to_preset(directory)
    restored = keras_hub.models.Backbone.from_preset(directory)  # the class comes from the preset's config
    assert isinstance(restored, MPNetBackbone)
    inputs = batch_inputs()
    for name, values in outputs_of(restored, inputs).items():
        np.testing.assert_array_equal(values, outputs_of(backbone, inputs)[name])
    assert MPNetBackbone.from_preset(directory, dtype="mixed_bfloat16").compute_dtype == "bfloat16"


@pytest.mark.parametrize(("policy", "compute_dtype"), [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")])
def test_mixed_precision_computes_in_16_bits_and_stays_close(policy, compute_dtype):
    backbone = shared_backbone()
    mixed = type(backbone).from_config({**backbone.get_config(), "dtype": policy})  # as BertTeacher.with_precision
    mixed.set_weights(backbone.get_weights())
    assert all(weight.dtype == "float32" for weight in mixed.weights)
    inputs = batch_inputs()
    outputs = mixed(inputs)
    assert keras.backend.standardize_dtype(outputs["sequence_output"].dtype) == compute_dtype
    assert keras.backend.standardize_dtype(outputs["pooled_output"].dtype) == compute_dtype
    expected = outputs_of(backbone, inputs)
    for name, values in outputs.items():
        values = np.asarray(values, np.float32)
        assert np.isfinite(values).all()
        # bfloat16 keeps 8 bits of mantissa: errors of about a hundredth on values of order 1.
        np.testing.assert_allclose(values, expected[name], atol=0.05 if compute_dtype == "bfloat16" else 0.01)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"hidden_dim": 9}, "hidden_dim=9"),
        ({"num_layers": 0}, "num_layers=0"),
        ({"vocabulary_size": 2.5}, "vocabulary_size=2.5"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"pad_token_id": 30}, "pad_token_id=30"),
        ({"layer_norm_epsilon": 0.0}, "layer_norm_epsilon=0.0"),
        ({"relative_attention_num_buckets": 31}, "relative_attention_num_buckets=31"),
        ({"relative_attention_max_distance": 4}, "relative_attention_max_distance=4"),
    ],
)
def test_invalid_arguments_raise_value_errors_naming_them(arguments, message):
    with pytest.raises(ValueError, match=message):
        MPNetBackbone(**{**TINY, **arguments})


def test_every_weight_is_trained_and_dropout_acts_in_training():
    backbone = random_backbone(seed=2)
    inputs = batch_inputs()
    with tf.GradientTape() as tape:
        outputs = backbone(inputs, training=True)
        loss = tf.reduce_sum(outputs["sequence_output"] ** 2) + tf.reduce_sum(outputs["pooled_output"])
    gradients = tape.gradient(loss, backbone.trainable_variables)
    untrained = [
        variable.path
        for variable, gradient in zip(backbone.trainable_variables, gradients)
        if gradient is None or not np.any(tf.convert_to_tensor(gradient).numpy())
    ]
    assert untrained == []
    assert np.abs(outputs["sequence_output"] - outputs_of(backbone, inputs)["sequence_output"]).max() > 1e-3


def test_xla_compiled_forward_pass_agrees():
    backbone = shared_backbone()
    inputs = batch_inputs()
    compiled = tf.function(backbone, jit_compile=True)({name: tf.constant(values) for name, values in inputs.items()})
    np.testing.assert_allclose(
        compiled["sequence_output"].numpy(), outputs_of(backbone, inputs)["sequence_output"], atol=1e-5
    )
