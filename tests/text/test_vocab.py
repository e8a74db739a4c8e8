"""Student tokenization and vocabulary: one implementation, the same ids eagerly, in tf.data and exported."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from bilstm_kd.text.vocab import (
    MASK,
    MASK_ID,
    PAD_ID,
    RESERVED,
    RUNTIME_DELIMITER,
    TOKENIZATION_RULES,
    UNK_ID,
    Vocabulary,
    WordTokenizer,
    count_words,
    lookup_table,
    rejoin_clitics,
    tokenization_rules,
    tokenize,
)

TEXTS = ["It's a GOOD film, isn't it?", "the [MASK] was good .", "", "a very long long long long long long film"]


def words(text):
    return [token.decode() for token in tokenize(text).numpy()]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("it 's a charming and often affecting journey . ", "it 's a charming and often affecting journey ."),
        ("It's charming... isn't it?", "it 's charming ... is n't it ?"),
        ("We'll see; they're OK!", "we 'll see ; they 're ok !"),
        ("a well-made, clichés-free film", "a well-made , clichés-free film"),
        ("`` quoted '' -- indeed", "`` quoted '' -- indeed"),
        ("the [MASK]. [mask] [Mask]", "the [MASK] . [MASK] [MASK]"),
        ("", ""),
        # Raw text as users write it: case, clitics, runs of punctuation, accents, emoji, addresses, numbers.
        ("Don't! It's GREAT!!!", "do n't ! it 's great !!!"),
        ("Café crème, naïve RÉSUMÉ", "café crème , naïve résumé"),
        ("love it 😀😀 ok👍", "love it 😀😀 ok 👍"),
        ("see https://example.com/a?b=1, or www.x.org now", "see url or url now"),
        ("mail Bob.Smith@x.co.uk today", "mail email today"),
        ("3.5 stars from 1,000 fans.", "3.5 stars from 1,000 fans ."),
        ("  tabs\tand\nnew lines  ", "tabs and new lines"),
    ],
)
def test_tokenize(text, expected):
    assert words(text) == expected.split()


def test_tokenize_is_idempotent_on_its_output():
    for text in TEXTS:
        once = " ".join(words(text))
        assert " ".join(words(once)) == once


def test_vocabulary_counts_order_min_count_and_max_size():
    counts = collections.Counter({"film": 5, "good": 3, "bad": 3, "rare": 1})
    assert Vocabulary.from_counts(counts).tokens == ("[PAD]", "[UNK]", "[MASK]", "film", "bad", "good", "rare")
    assert Vocabulary.from_counts(counts, min_count=2).tokens[3:] == ("film", "bad", "good")
    assert Vocabulary.from_counts(counts, max_size=5).tokens[3:] == ("film", "bad")


def test_count_words_batches_agree():
    texts = ["a b a", "c , a", "b"] * 5
    assert (
        count_words(texts, batch_size=4)
        == count_words(texts)
        == collections.Counter({"a": 15, "b": 10, "c": 5, ",": 5})
    )


def test_extended_adds_new_single_tokens_in_order():
    vocabulary = Vocabulary.from_texts(["good film"])
    extended = vocabulary.extended(["Great", "film", "new york", "new_york", "", "don't", "great", "[mask]"])
    # Lowercased like the tokenizer; known words, repeats, "[mask]" and what the tokenizer splits or drops skipped.
    assert extended.tokens == (*vocabulary.tokens, "great", "new_york")
    assert vocabulary.extended([]) == vocabulary


def test_save_load_round_trip_and_errors(tmp_path):
    vocabulary = Vocabulary.from_texts(TEXTS)
    path = tmp_path / "vocab.txt"
    vocabulary.save(path)
    assert Vocabulary.load(path) == vocabulary
    path.write_text("[PAD]\n[UNK]\n[MASK]\ngood film\n")
    with pytest.raises(ValueError, match=r"vocab.txt, line 4: a token must be one non-empty word"):
        Vocabulary.load(path)
    path.write_text("good\n[PAD]\n")
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary.load(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        Vocabulary.load(tmp_path / "missing.txt")


def test_word_tokenizer_ids_truncation_and_empty_strings():
    vocabulary = Vocabulary.from_texts(TEXTS[:2])
    tokenizer = WordTokenizer(vocabulary.tokens, max_length=5)
    ids = tokenizer(tf.constant(TEXTS)).numpy()
    assert ids.shape == (4, 5)
    assert ids[1, 1] == MASK_ID
    assert (ids[2] == PAD_ID).all()
    assert ids[3, 0] == vocabulary.tokens.index("a") and (ids[3, 1:] == UNK_ID).all()
    fixed = WordTokenizer(vocabulary.tokens, max_length=12, pad_to_max_length=True)(tf.constant(TEXTS[:1]))
    assert fixed.shape == (1, 12)


def test_eager_dataset_map_and_saved_model_agree(tmp_path):
    vocabulary = Vocabulary.from_texts(TEXTS)
    tokenizer = WordTokenizer(vocabulary.tokens, max_length=8, pad_to_max_length=True)
    eager = tokenizer(tf.constant(TEXTS)).numpy()

    batched = np.concatenate(
        list(tf.data.Dataset.from_tensor_slices(TEXTS).batch(3).map(tokenizer).as_numpy_iterator())
    )
    unbatched = np.stack(
        list(tf.data.Dataset.from_tensor_slices(TEXTS).map(lambda text: tokenizer(text[None])[0]).as_numpy_iterator())
    )

    module = tf.Module()
    module.tokenizer = tokenizer
    module.serve = tf.function(tokenizer.call, input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "tokenizer"))
    exported = tf.saved_model.load(str(tmp_path / "tokenizer")).serve(tf.constant(TEXTS)).numpy()

    np.testing.assert_array_equal(batched, eager)
    np.testing.assert_array_equal(unbatched, eager)
    np.testing.assert_array_equal(exported, eager)


def test_word_tokenizer_config_round_trip():
    tokenizer = WordTokenizer(Vocabulary.from_texts(TEXTS).tokens, max_length=6)
    restored = WordTokenizer.from_config(tokenizer.get_config())
    np.testing.assert_array_equal(restored(tf.constant(TEXTS)), tokenizer(tf.constant(TEXTS)))
    with pytest.raises(ValueError, match="max_length=0"):
        WordTokenizer(Vocabulary.from_texts(TEXTS).tokens, max_length=0)


# ----------------------------------------------------------------------------------------------------------------
# The regex tokenizer: what MediaPipe's on-device runtime reproduces (tests/export checks it against the runtime)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Don't stop, it's GOOD!", ["Don't", "stop", "it's", "GOOD"]),  # case kept, clitics whole, punctuation gone
        ("good-film 3.5 e-mail@x.org", ["good", "film", "3", "5", "e", "mail", "x", "org"]),
        ("naïve Über café", ["naïve", "Über", "café"]),  # letters beyond ASCII stay in their word
        ("snake_case\ttabs\nnewline", ["snake_case", "tabs", "newline"]),
        # augmentation's mask splits to MASK, as at runtime, where the vocabulary maps MASK to the mask id
        ("a [MASK] b [mask] MASK.", ["a", "[MASK]", "b", "mask", "[MASK]"]),
        ("... !!! 😀", []),
        ("", []),
    ],
)
def test_regex_tokenize(text, expected):
    assert [token.decode() for token in tokenize(tf.constant([text]), "regex").to_list()[0]] == expected


def test_regex_vocabulary_is_lowercase_and_is_looked_up_as_word_Word_and_WORD():
    vocabulary = Vocabulary.from_texts(["Good FILM", "good film, bad", "it's great"], tokenizer="regex")
    assert vocabulary.tokens == (*RESERVED, "film", "good", "bad", "great", "it's")
    ids = WordTokenizer(vocabulary.tokens, 8, tokenizer="regex")(
        tf.constant(["good Good GOOD GooD", "It's IT'S it'S", "[MASK] unknown"])
    ).numpy()
    good, its = vocabulary.tokens.index("good"), vocabulary.tokens.index("it's")
    np.testing.assert_array_equal(ids[0], [good, good, good, UNK_ID])
    np.testing.assert_array_equal(ids[1], [its, its, UNK_ID, PAD_ID])
    np.testing.assert_array_equal(ids[2], [MASK_ID, UNK_ID, PAD_ID, PAD_ID])


def test_lookup_table_spellings_and_shared_spelling_keeps_the_more_frequent_word():
    tokens = (*RESERVED, "ss", "ß", "it's")  # "ß".upper() == "SS" == "ss".upper()
    table = dict(lookup_table(tokens, "regex"))
    assert table["SS"] == 3 and table["ss"] == 3 and table["Ss"] == 3 and table["ß"] == 4
    assert table["It's"] == table["IT'S"] == 5 and table[MASK] == table["MASK"] == MASK_ID
    assert "[PAD]" not in table and "[UNK]" not in table
    assert dict(lookup_table(tokens)) == {MASK: 2, "ss": 3, "ß": 4, "it's": 5}  # glue: each token as itself


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i do n't like it 's plot", "i don't like it's plot"),
        ("we 're here , they 'll go , i 'd , you 've , i 'm", "we're here , they'll go , i'd , you've , i'm"),
        ("ca n't and wo n't", "can't and won't"),
        ("rock 'n' roll 's", "rock 'n' roll's"),
        ("'s at the start", "'s at the start"),
    ],
)
def test_rejoin_clitics(text, expected):
    assert rejoin_clitics(text) == expected


def test_tokenization_rules_of_glue_are_unchanged_and_regex_names_the_runtime_delimiter():
    assert tokenization_rules("glue") == TOKENIZATION_RULES  # the fingerprints of earlier runs depend on it
    assert ("split", RUNTIME_DELIMITER) in tokenization_rules("regex")
    with pytest.raises(ValueError, match="tokenizer='bert'"):
        tokenization_rules("bert")
