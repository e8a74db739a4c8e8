"""MPNet as the package's teacher: `--teacher=mpnet` and Hugging Face MPNet directories load into a `BertTeacher`
with MPNet's preprocessor, augmentation's `[MASK]` reaches MPNet's `<mask>`, and a fine-tuned MPNet teacher is
saved, reloaded and recast like a BERT one."""

import json
import os

import numpy as np
import pytest
from conftest import sentiment_examples
from numpy_mpnet import MASK_ID, VOCABULARY, random_hf_weights, write_checkpoint

from bilstm_kd.data.tasks import get_task
from bilstm_kd.teacher.fine_tuning import FineTuning, fine_tune_teacher
from bilstm_kd.teacher.inference import encode_texts, encoded_logits, teacher_logits
from bilstm_kd.teacher.lite import LiteTeacher
from bilstm_kd.teacher.loading import load_teacher
from bilstm_kd.teacher.mpnet import MPNetBackbone, MPNetTextClassifierPreprocessor
from bilstm_kd.teacher.saving import load_fine_tuned_teacher


@pytest.fixture
def installed_mpnet(tmp_path, monkeypatch):
    """A tiny MPNet checkpoint where `--teacher=mpnet` looks, with the record an install writes."""
    directory = write_checkpoint(str(tmp_path / "all-mpnet-base-v2"), random_hf_weights(seed=4))
    with open(os.path.join(directory, "bilstm_kd_install.json"), "w") as file:
        json.dump({"test": True}, file)
    monkeypatch.setenv("BILSTM_KD_MPNET_DIR", directory)
    return directory


def test_mpnet_loads_as_a_teacher_and_masks_reach_its_mask_token(installed_mpnet):
    for teacher in ("mpnet", installed_mpnet):  # by name, and as any Hugging Face directory of model_type mpnet
        model = load_teacher(teacher, num_classes=2, pooling="mean", max_length=12)
        assert isinstance(model.backbone, MPNetBackbone)
        assert isinstance(model.preprocessor, MPNetTextClassifierPreprocessor)
    encoded = encode_texts(model.preprocessor, ["a [MASK] film", "a [mask] film"], ["the film", "not good"])
    first = encoded.token_ids[: encoded.lengths[0]].tolist()
    a, film, the = (VOCABULARY.index(word) for word in ("a", "film", "the"))
    assert first == [0, a, MASK_ID, film, 2, 2, the, film, 2]  # <s> A </s></s> B </s>
    assert encoded.token_ids[encoded.offsets[1] + 2] == MASK_ID  # any case of [mask]
    with pytest.raises(ValueError, match="max_length=20 is too long"):
        load_teacher("mpnet", num_classes=2, max_length=20)  # the tiny model takes 16


def test_a_fine_tuned_mpnet_teacher_is_saved_reloaded_and_recast(installed_mpnet, tmp_path):
    config = FineTuning(teacher="mpnet", pooling="mean", epochs=1, learning_rate=3e-3, batch_size=4, max_length=12)
    task, train, dev = get_task("sst2"), sentiment_examples(16), sentiment_examples(6)
    directory = str(tmp_path / "teacher")
    teacher, _ = fine_tune_teacher(config, task, train, dev, directory, verbose=0)
    reloaded = load_fine_tuned_teacher(directory)
    assert isinstance(reloaded.backbone, MPNetBackbone)
    expected = teacher_logits(teacher, dev.texts[0])
    np.testing.assert_allclose(teacher_logits(reloaded, dev.texts[0]), expected, atol=1e-5)
    bfloat16 = load_fine_tuned_teacher(directory, dtype_policy="mixed_bfloat16")
    assert bfloat16.precision == "mixed_bfloat16"
    np.testing.assert_allclose(teacher_logits(bfloat16, dev.texts[0]), expected, atol=0.05 * np.abs(expected).max())
    # Its TFLite copy (builtin ops only; this tiny one is too small to be quantized) gives the same logits.
    lite = LiteTeacher(reloaded)
    encoded = encode_texts(reloaded.preprocessor, dev.texts[0])
    np.testing.assert_allclose(encoded_logits(lite, encoded, batch_size=2), expected, atol=1e-5)
