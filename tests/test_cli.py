"""The installed `bilstm-kd` command: its help as a new user reads it, its errors, and the filter that keeps
TensorFlow's start-up lines off stderr."""

import os
import pathlib
import subprocess
import sys
import tomllib

import pytest
from conftest import bilstm_kd

from bilstm_kd import cli

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


def test_the_package_installs_the_console_command():
    scripts = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"bilstm-kd": "bilstm_kd.cli:console"}
    assert set(cli.COMMANDS) == {"train", "predict", "evaluate"}


@pytest.mark.parametrize(
    "command, first_flags",
    [
        ("train", ["--flagfile", "--train_file", "--dev_file", "--test_file", "--text_column", "--label_column",
                   "--workdir", "--teacher", "--teacher_epochs", "--n_iter", "--epochs", "--train_limit"]),
        ("predict", ["--model", "--input", "--output", "--text_column", "--text_pair_column", "--top_k",
                     "--all_scores"]),
        ("evaluate", ["--model", "--data", "--text_column", "--label_column", "--json", "--output"]),
    ],
)  # fmt: skip
def test_help_exits_0_with_the_main_flags_first(command, first_flags):
    for argument in ("-h", "--help"):
        result = bilstm_kd(command, argument)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"Usage: bilstm-kd {command} --")
        listed = [line.split()[0] for line in lines if line.startswith("  --")]
        assert listed == first_flags
        assert lines[-1].startswith("--helpfull lists every flag")
        assert len(lines) < 40  # a screen, not absl's hundred flags


def test_helpfull_lists_every_run_flag_by_section_and_absls_own_last():
    from bilstm_kd import config

    result = bilstm_kd("train", "--helpfull")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    listed = [line.split()[0][2:] for line in text.splitlines() if line.startswith("  --")]
    assert listed == [field.name for field in config.flag_fields()]  # declaration order, not alphabetical
    sections = [text.index(part) for part in ("\nData:\n", "  --train_file", "\nTeacher:\n", "  --teacher ")]
    assert sections == sorted(sections)
    assert text.splitlines()[-1].endswith("--only_check_flags.") and "--pdb" not in listed


def test_the_python_m_forms_take_the_same_help():
    for module, command in (("bilstm_kd.main", "train"), ("bilstm_kd.predict", "predict")):
        result = subprocess.run([sys.executable, "-m", module, "-h"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.startswith(f"Usage: bilstm-kd {command} ")


def test_a_missing_or_unknown_command_and_a_bad_flag_are_one_line_and_status_2():
    alone = bilstm_kd()
    assert alone.returncode == 2
    assert alone.stderr.splitlines()[-1] == "error: name a command: train, predict or evaluate"
    assert "Usage: bilstm-kd COMMAND" in alone.stderr
    unknown = bilstm_kd("distil")
    assert unknown.returncode == 2 and unknown.stderr.splitlines()[-1] == "error: unknown command 'distil'"
    overview = bilstm_kd("--help")
    assert overview.returncode == 0 and overview.stdout.startswith("Usage: bilstm-kd COMMAND")
    bad = bilstm_kd("predict", "--model=x", "--top_k=0")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: flag --top_k=0")


def test_quiet_tensorflow_drops_only_tensorflows_start_up_lines():
    # What `import tensorflow` and a TFLite interpreter write on fd 2 here, and two lines that must stay.
    script = r"""
import os, sys
from absl import flags
from bilstm_kd import cli
flags.FLAGS(sys.argv)
with cli.quiet_tensorflow():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1796590213.659709   18178 port.cc:153] oneDNN custom operations are on.\n")
    os.write(2, b"I0000 00:00:1796590213.660080   18178 cudart_stub.cc:31] Could not find cuda drivers\n")
    os.write(2, b"I0000 00:00:1796590213.706114   18178 cpu_feature_guard.cc:227] This TensorFlow binary is\n")
    os.write(2, b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
                b"appropriate compiler flags.\n")
    os.write(2, b"E0000 00:00:1796590215.474697   18178 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"E0000 00:00:1796590215.474697   18178 saver.cc:52] a real error\n")
    print("a warning of ours", file=sys.stderr)
print(os.environ["TF_CPP_MIN_LOG_LEVEL"])
"""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    run = [sys.executable, "-c", script]
    quiet = subprocess.run(run, capture_output=True, text=True, env=environment, timeout=60)
    assert quiet.stderr.splitlines() == [
        "E0000 00:00:1796590215.474697   18178 saver.cc:52] a real error",
        "a warning of ours",
    ]
    assert quiet.stdout == "3\n"
    verbose = subprocess.run([*run, "--verbosity=0"], capture_output=True, text=True, env=environment, timeout=60)
    assert len(verbose.stderr.splitlines()) == 9 and verbose.stdout == "0\n"
    warnings = subprocess.run([*run, "--verbosity=-1"], capture_output=True, text=True, env=environment, timeout=60)
    assert len(warnings.stderr.splitlines()) == 2 and warnings.stdout == "1\n"
