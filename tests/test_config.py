"""Flags -> validated RunConfig: every flagfile parses, bad values fail naming the flag."""

import dataclasses
import json
import pathlib

import pytest
from absl import flags

from bilstm_kd import config as config_lib
from bilstm_kd import main as main_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLAGFILES = sorted((ROOT / "flags").glob("*.cfg"))


@pytest.fixture(autouse=True)
def from_repository_root(monkeypatch):
    """Flagfiles are run from the repository root, and name one another from it."""
    monkeypatch.chdir(ROOT)


def parse(*argv: str) -> config_lib.RunConfig:
    flag_values = flags.FlagValues()
    main_lib.define_flags(flag_values)
    flag_values(["prog", *argv])
    return main_lib.config_from_flags(flag_values)


@pytest.mark.parametrize("flagfile", FLAGFILES, ids=lambda path: path.name)
def test_every_flagfile_parses_into_a_valid_config(flagfile):
    config = parse(f"--flagfile={flagfile}")
    assert config.data.task in config_lib.TASKS or config.data.source() == "files"
    # Every line of a flagfile is a comment, blank, one --flag=value that the config knows, or another flagfile.
    names = {field.name for field in config_lib.flag_fields()}
    for line in flagfile.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.startswith("--") and "=" in line, line
            name, value = line[2:].split("=", 1)
            assert name in names or (name == "flagfile" and (ROOT / value).is_file()), line


def test_a_flagfile_that_includes_another_overrides_it():
    base = parse(f"--flagfile={ROOT / 'flags/sst2_cpu.cfg'}")
    ensemble = parse(f"--flagfile={ROOT / 'flags/sst2_cpu_ensemble.cfg'}")
    assert (ensemble.teacher.teacher_ensemble, ensemble.student.embeddings) == (2, "teacher")
    assert ensemble.workdir != base.workdir
    assert (ensemble.data, ensemble.augment, ensemble.distill) == (base.data, base.augment, base.distill)


def test_flagfile_sections_and_overrides():
    config = parse(f"--flagfile={FLAGFILES[0].parent / 'sst2.cfg'}", "--n_iter=3", "--data_dir=/elsewhere")
    assert config.augment.n_iter == 3
    assert config.data.data_dir == "/elsewhere"
    assert config.teacher.teacher == "bert_large_en_uncased"
    assert config.distill.optimizer == "adadelta" and config.distill.learning_rate == 1.0


def test_paper_defaults():
    config = config_lib.RunConfig()
    assert (config.augment.p_mask, config.augment.p_pos, config.augment.p_ng) == (0.1, 0.1, 0.25)
    assert (config.distill.alpha, config.distill.rho, config.distill.batch_size) == (0.0, 0.95, 50)
    assert (config.student.lstm_units, config.student.hidden_units) == (150, 200)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--p_mask=1.5"], "p_mask"),
        (["--p_mask=0.6", "--p_pos=0.6"], "p_pos"),
        (["--batch_size=0"], "batch_size"),
        (["--alpha=-0.1"], "alpha"),
        (["--stages=teacher,cooking"], "stages"),
        (["--data_source=glue"], "data_dir"),
        (["--task=mrpc"], "data_source"),
        (["--teacher_max_length=4"], "teacher_max_length"),
        (["--vocab_max_size=2"], "vocab_max_size"),
        (["--student_seed=-2"], "student_seed"),
        (["--teacher_ensemble=0"], "teacher_ensemble"),
        (["--baseline_epochs=-1"], "baseline_epochs"),
        (["--label_check_margin=-0.5"], "label_check_margin"),
        (["--train_file=my.csv", "--label_column=label"], "text_column"),
        (["--train_file=my.csv", "--text_column=text"], "label_column"),
        (["--train_file=my.txt", "--text_column=t", "--label_column=l", "--noheader"], "column_names"),
        (["--dev_file=dev.csv"], "data_source"),
        (["--dev_fraction=1"], "dev_fraction"),
        (["--delimiter=;;"], "delimiter"),
        (["--encoding=klingon"], "encoding"),
        (["--tfds_name=ag_news_subset"], "tfds_name"),
        (["--tfds_splits=train,test"], "tfds_splits"),
    ],
)
def test_bad_values_name_the_flag(argv, flag):
    with pytest.raises(config_lib.ConfigError, match=f"--{flag}="):
        parse(*argv)


def test_enum_flags_reject_unknown_values():
    with pytest.raises(flags.IllegalFlagValueError, match="distill_loss"):
        parse("--distill_loss=cosine")
    with pytest.raises(flags.IllegalFlagValueError, match="label_precision"):
        parse("--label_precision=int4")


def test_config_json_round_trip():
    config = parse("--task=rte", "--data_source=glue", "--data_dir=/data/RTE", "--n_iter=4", "--multichannel=false")
    restored = config_lib.RunConfig.from_dict(json.loads(config.to_json()))
    assert restored == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3


def test_stage_list_keeps_pipeline_order():
    config = config_lib.RunConfig(stages="report, teacher")
    assert config.stage_list() == ("teacher", "report")
    assert config_lib.RunConfig().stage_list() == config_lib.STAGES


def test_every_field_has_help():
    for field in config_lib.flag_fields():
        assert field.metadata.get("help"), field.name


def test_package_exports_the_public_classes():
    import bilstm_kd
    from bilstm_kd.distill.distiller import Distiller

    assert bilstm_kd.Distiller is Distiller
    assert {"BiLSTMClassifier", "SiameseBiLSTMClassifier", "WordTokenizer"} <= set(bilstm_kd.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        bilstm_kd.no_such_name  # noqa: B018
