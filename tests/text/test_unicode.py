"""Property-based tests: what a word is, for any Unicode string a user's file may hold (issue: a no-break space
became a vocabulary token its own reader refused). Bounded examples, a fixed seed; found failures stay as
explicit examples."""

import unicodedata

import numpy as np
import pytest
import tensorflow as tf
from conftest import user_text
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bilstm_kd.text.vocab import TOKENIZERS, Vocabulary, WordTokenizer, is_token, tokenize

PROPERTIES = settings(max_examples=150, derandomize=True, database=None, deadline=None)


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
@PROPERTIES
@given(text=user_text())
@example(text="an extra $1\u00a0 charge")  # the no-break space that ended a real run in its export stage
@example(text="\x00\x07bell")  # TensorFlow's UTF-8 lowercasing stops at NUL: separators go first
@example(text="x\ue000y [mask]")  # the [MASK] stand-in in a user's text separates words, as at runtime
def test_every_token_is_one_word(tokenizer, text):
    tokens = [token.decode("utf-8") for token in tokenize([text], tokenizer).to_list()[0]]
    assert all(is_token(token) for token in tokens), tokens
    assert not any(character.isspace() for token in tokens for character in token)


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
@PROPERTIES
@given(texts=st.lists(user_text(), min_size=1, max_size=6))
def test_a_vocabulary_of_any_text_round_trips_through_its_file(tokenizer, texts, tmp_path_factory):
    if tokenizer == "regex":  # it looks words up as word, Word and WORD only ("GooD" is unknown by design)
        texts = [text.lower() for text in texts]
    vocabulary = Vocabulary.from_texts(texts, tokenizer=tokenizer)
    path = tmp_path_factory.mktemp("vocabulary") / "vocab.txt"
    vocabulary.save(path)
    assert Vocabulary.load(path) == vocabulary
    assert len(path.read_bytes().split(b"\n")) == len(vocabulary) + 1  # one line a token, no token split
    # Every word of the texts is known (no [UNK], id 1) in NFC; a word that mixes NFC and NFD ("À" + "A" U+0300)
    # is unknown in training and at runtime alike.
    nfc = [unicodedata.normalize("NFC", text) for text in texts]
    ids = WordTokenizer(vocabulary.tokens, 10_000, tokenizer=tokenizer)(tf.constant(nfc)).numpy()
    assert not np.any(ids == 1)


def test_a_vocabulary_refuses_a_token_that_is_not_one_word():
    for bad in ("\u00a0", "a b", "new\u2028line", "zero\u200bwidth", ""):
        with pytest.raises(ValueError, match="not one word"):
            Vocabulary(("[PAD]", "[UNK]", "[MASK]", bad))
    # Built from counts, such a string is left out (it stays unknown) rather than failing the run.
    assert Vocabulary.from_counts({"good": 2, "\u00a0": 3}).tokens == ("[PAD]", "[UNK]", "[MASK]", "good")


ACCENTED_WORDS = ["café", "naïve", "Über", "señor", "façade", "Ångström", "crème", "élan", "Ελλάδα", "tiếng"]


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
@PROPERTIES
@given(
    words=st.lists(st.sampled_from(ACCENTED_WORDS), min_size=1, max_size=6),
    separator=st.sampled_from([" ", "\u00a0", "\u2028", "\t", ", ", "\u200b"]),
    vocabulary_form=st.sampled_from(["NFC", "NFD"]),
)
def test_nfc_and_nfd_text_get_the_same_ids(tokenizer, words, separator, vocabulary_form):
    text = separator.join(words)
    vocabulary = Vocabulary.from_texts([unicodedata.normalize(vocabulary_form, text)], tokenizer=tokenizer)
    forms = [unicodedata.normalize(form, text) for form in ("NFC", "NFD")]
    ids = WordTokenizer(vocabulary.tokens, 64, tokenizer=tokenizer)(tf.constant(forms)).numpy()
    np.testing.assert_array_equal(ids[0], ids[1])
    assert not np.any(ids == 1)
