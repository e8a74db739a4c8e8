"""The command line end to end, in a subprocess as a user runs it."""

import json
import pathlib
import subprocess
import sys

import pytest
from conftest import GLUE_DIR, requires_glue

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


def run_main(*argv):
    return subprocess.run(
        [sys.executable, "-m", "bilstm_kd.main", *argv], capture_output=True, text=True, cwd=REPOSITORY, timeout=300
    )


def test_demo_data_statistics_and_config_json(tmp_path):
    result = run_main("--flagfile=flags/demo.cfg", f"--workdir={tmp_path}", "--embeddings=random", "--stages=report")
    assert result.returncode == 0, result.stderr
    assert "480 rows" in result.stdout and "160 rows" in result.stdout
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["workdir"] == str(tmp_path)
    assert written["augment"]["n_iter"] == 5
    vocabulary = (tmp_path / "student" / "vocab.txt").read_text().splitlines()
    assert vocabulary[:3] == ["[PAD]", "[UNK]", "[MASK]"]
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["vocabulary_size"] == len(vocabulary)


def test_bad_flag_fails_before_any_work(tmp_path):
    workdir = tmp_path / "run"
    result = run_main("--flagfile=flags/demo.cfg", f"--workdir={workdir}", "--p_ng=2")
    assert result.returncode == 2
    assert result.stderr == "error: --p_ng=2.0 is not allowed: must be between 0.0 and 1.0\n"
    assert not workdir.exists()
    unknown = run_main("--no_such_flag=1")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: Unknown command line flag 'no_such_flag'")


@requires_glue
def test_real_sst2_statistics(tmp_path):
    result = run_main(
        "--flagfile=flags/sst2.cfg",
        f"--data_dir={GLUE_DIR / 'SST-2'}",
        f"--workdir={tmp_path}",
        "--stages=report",
        "--vocab_from_vectors=0",
    )
    assert result.returncode == 0, result.stderr
    assert "67,349 rows" in result.stdout and "872 rows" in result.stdout
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["splits"]["train"]["labels"] == {"0": 29780, "1": 37569}
    assert stats["embeddings"]["coverage"] > 0.9
    # Training words only: every training word is known, and 509 of the 872 dev sentences hold an unknown one.
    # (14,748 tokens: the numbers 10,000, 2,500 and 1.8 stay whole, as GLUE's tokenization has them.)
    assert stats["vocabulary_size"] == 14748 and stats["splits"]["train"]["text_a_words"]["unknown"] == 0
    assert stats["splits"]["dev"]["text_a_words"]["rows_with_unknown"] == round(509 / 872, 4)


def test_report_alone_in_a_new_process_reloads_the_saved_student(tmp_path):
    # The student classes must be registered by whatever loads the student, not by an earlier stage having
    # imported them in the same process (a resumed run whose only stage left is the report).
    tiny = ["--flagfile=flags/demo.cfg", f"--workdir={tmp_path}", "--embeddings=random", "--embedding_dim=8"]
    tiny += ["--lstm_units=4", "--hidden_units=4", "--epochs=1"]
    trained = run_main(*tiny, "--stages=baseline")
    assert trained.returncode == 0, trained.stderr
    reported = run_main(*tiny, "--stages=report")
    assert reported.returncode == 0, reported.stderr
    assert "[baseline] up to date" in reported.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    history = json.loads((tmp_path / "student" / "baseline" / "history.json").read_text())
    # Keras logs the best value as float32; the report counts correct answers exactly.
    assert report["models"]["baseline"]["dev"]["dev"]["accuracy"] == pytest.approx(history["best_value"], abs=1e-6)
    assert report["models"]["baseline"]["throughput"]["batch_512"] > 0


def parse(*argv):
    from absl import flags

    from bilstm_kd import main

    flag_values = flags.FlagValues()
    main.define_flags(flag_values)
    flag_values(["prog", *argv])
    return main.config_from_flags(flag_values), flag_values


@pytest.mark.parametrize(
    "argv, workdir",
    [
        (["--train_file=data/my intents.csv"], "runs/my_intents"),
        (["--train_file=../shared/data/HWU64/train.csv"], "runs/HWU64"),  # a split's name: its folder's
        (["--tfds_name=ag_news_subset"], "runs/ag_news_subset"),
        (["--task=rte", "--data_source=glue", "--data_dir=/data/RTE"], "runs/glue_rte"),
        ([], "runs/demo_auto"),  # the demo corpus without the demo's flagfile
        (["--flagfile=flags/demo.cfg"], "runs/demo"),
        (["--train_file=my.csv", "--workdir=elsewhere"], "elsewhere"),
    ],
)
def test_without_workdir_the_run_directory_is_named_after_the_data(argv, workdir, monkeypatch):
    monkeypatch.chdir(REPOSITORY)
    config, _ = parse(*argv, "--text_column=text", "--label_column=label")
    assert config.workdir == workdir


def test_a_directory_named_after_the_data_is_refused_when_it_holds_a_run_on_other_data(tmp_path):
    from absl import app

    from bilstm_kd import main

    (tmp_path / "runs" / "HWU64").mkdir(parents=True)
    record = tmp_path / "runs" / "HWU64" / "config.json"
    train = tmp_path / "HWU64" / "train.csv"
    flags = [f"--train_file={train}", "--text_column=text", "--label_column=intent"]
    config, _ = parse(*flags, f"--workdir={tmp_path / 'runs' / 'HWU64'}")
    record.write_text(json.dumps(config.to_dict()))
    main.check_named_workdir(config)  # the same data: the run resumes there
    other, _ = parse(*flags[:-1], "--label_column=scenario", f"--workdir={tmp_path / 'runs' / 'HWU64'}")
    with pytest.raises(app.UsageError, match=r"holds a run on other data .*--label_column=intent"):
        main.check_named_workdir(other)
    # As a user meets it: one line, status 2, before anything is read or written.
    result = subprocess.run(
        [sys.executable, "-m", "bilstm_kd.main", f"--train_file={train}", "--text_column=text", "--label_column=x"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith("error: runs/HWU64 (named after the data) holds a run")
    assert sorted(path.name for path in (tmp_path / "runs" / "HWU64").iterdir()) == ["config.json"]
