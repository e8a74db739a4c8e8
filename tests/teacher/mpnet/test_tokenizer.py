"""MPNetTokenizer: ids of a tiny vocabulary (case, accents, unknown words, special tokens in text), its
attributes, serialization, and the real vocabulary's ids for the reference sentences when it is installed."""

import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from numpy_mpnet import MASK_ID, VOCABULARY

from bilstm_kd.teacher.mpnet import MPNetTokenizer

SHARED_DIR = pathlib.Path(__file__).resolve().parents[3].parent / "shared"
REFERENCE = SHARED_DIR / "data" / "mpnet" / "reference.json"
MPNET_DIR = pathlib.Path(os.environ.get("BILSTM_KD_MPNET_DIR", "~/.cache/bilstm_kd/all-mpnet-base-v2")).expanduser()


def ids(*words):
    return [VOCABULARY.index(word) for word in words]


def tokenizer(**kwargs):
    return MPNetTokenizer(VOCABULARY, **{"special_tokens_in_strings": True, **kwargs})


UNK = VOCABULARY.index("[UNK]")
CASES = {
    "The Film WAS good!": ids("the", "film", "was", "good", "!"),
    "Café naïve": ids("cafe", "naive"),  # lowercased, accents stripped
    "a zebra film": [*ids("a"), UNK, *ids("film")],  # no word piece spells "zebra"
    "it's un-believable": ids("it", "'", "s", "un", "-", "be", "##liev", "##able"),
    "a <mask> film.": [*ids("a"), MASK_ID, *ids("film", ".")],
    "a<mask>": [*ids("a"), MASK_ID],
    "<s>a</s>": ids("<s>", "a", "</s>"),
    "[UNK] <unk>": ids("[UNK]", "<unk>"),  # Hugging Face keeps both whole
    "a <MASK>": [*ids("a"), UNK, UNK, UNK],  # not the mask token (nor in Hugging Face's tokenizer)
}


@pytest.mark.parametrize("text", list(CASES))
def test_ids_of_a_tiny_vocabulary(text):
    assert np.asarray(tokenizer()(text)).tolist() == CASES[text]


def test_traced_batched_tokenization_gives_the_same_ids():
    # Inside tf.function (as the package encodes text) keras-hub runs TensorFlow Text, not its Python path.
    traced = tf.function(tokenizer())(tf.constant(list(CASES)))
    assert traced.to_list() == list(CASES.values())
    dataset = tf.data.Dataset.from_tensor_slices(list(CASES)).batch(4).map(tokenizer())
    assert [row for batch in dataset for row in batch.to_list()] == list(CASES.values())


def test_mask_in_text_stays_split_without_special_tokens_in_strings():
    assert MASK_ID not in np.asarray(tokenizer(special_tokens_in_strings=False)("a <mask>")).tolist()


def test_attributes_the_package_reads():
    tokens = tokenizer()
    assert (tokens.pad_token_id, tokens.start_token_id, tokens.end_token_id) == (1, 0, 2)
    assert (tokens.cls_token_id, tokens.sep_token_id) == (0, 2)
    assert (tokens.cls_token, tokens.sep_token, tokens.pad_token) == ("<s>", "</s>", "<pad>")
    assert (tokens.mask_token, tokens.mask_token_id) == ("<mask>", MASK_ID)
    assert tokens.oov_token == "[UNK]" and tokens.token_to_id(tokens.oov_token) == UNK
    assert tokens.get_vocabulary() == VOCABULARY and tokens.vocabulary_size() == len(VOCABULARY)
    assert tokens.id_to_token(MASK_ID) == "<mask>"
    assert tokens.lowercase and tokens.strip_accents


def test_a_vocabulary_without_mpnet_special_tokens_is_rejected():
    with pytest.raises(ValueError, match="<mask>"):
        MPNetTokenizer([token for token in VOCABULARY if token != "<mask>"])


def test_config_round_trip_keeps_the_settings():
    tokens = tokenizer(strip_accents=False)
    restored = MPNetTokenizer.from_config(tokens.get_config())
    restored.set_vocabulary(tokens.get_vocabulary())
    assert (restored.special_tokens_in_strings, restored.strip_accents, restored.lowercase) == (True, False, True)
    assert np.asarray(restored("a <mask> café")).tolist() == np.asarray(tokens("a <mask> café")).tolist()


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference values not found at {REFERENCE} (../shared)")
def test_real_vocabulary_gives_the_reference_ids():
    vocabulary = MPNET_DIR / "vocab.txt"
    if not vocabulary.is_file():
        pytest.skip(f"all-mpnet-base-v2 not installed: no {vocabulary} (set BILSTM_KD_MPNET_DIR)")
    tokens = MPNetTokenizer(str(vocabulary), special_tokens_in_strings=True)
    assert (tokens.vocabulary_size(), tokens.mask_token_id, tokens.token_to_id("[UNK]")) == (30527, 30526, 104)
    sentences = json.loads(REFERENCE.read_text())["sentences"]
    start, end = tokens.start_token_id, tokens.end_token_id
    for sentence in sentences:
        assert [start, *np.asarray(tokens(sentence["text"])).tolist(), end] == sentence["token_ids"]
    traced = tf.function(tokens)(tf.constant([sentence["text"] for sentence in sentences])).to_list()
    assert [[start, *row, end] for row in traced] == [sentence["token_ids"] for sentence in sentences]
    assert np.asarray(tokens("a <mask> film")).tolist()[1] == 30526
