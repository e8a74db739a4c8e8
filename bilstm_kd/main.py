"""Distil a task-specific BERT into a BiLSTM student.

    bilstm-kd train --train_file my.csv --text_column text --label_column label          # into runs/my
    python -m bilstm_kd.main --flagfile flags/sst2.cfg [--flag=value ...]

Every flag is a field of the run configuration (bilstm_kd/config.py); `-h` shows the main ones, `--helpfull`
all of them. This is the only module that reads the run flags: it validates them into a frozen `RunConfig` and
hands it, with the run directory, to `bilstm_kd.pipeline.runner.run`. Without `--workdir` the run directory is
named after the data (`DataConfig.run_name`), and one that holds a run on other data is refused. A user's error
(a bad flag, bad data, a missing file) prints one line and exits with status 2; a traceback means a bug.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from absl import app, flags

from bilstm_kd import cache, cli
from bilstm_kd import config as config_lib

_DEFINE_BY_TYPE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}

HELP = cli.CommandHelp(
    command="train",
    usage="--train_file FILE --text_column NAME --label_column NAME [--workdir DIR] [--flag=value ...]",
    summary=(
        "Fine-tunes a BERT teacher on your data and distils it into a small, fast BiLSTM student, exported as "
        "a SavedModel and TFLite files, with a report."
    ),
    first=(
        "flagfile",
        "train_file",
        "dev_file",
        "test_file",
        "text_column",
        "label_column",
        "workdir",
        "teacher",
        "teacher_epochs",
        "n_iter",
        "epochs",
        "train_limit",
    ),
    groups=tuple(
        (name.capitalize(), tuple(field.name for field in fields)) for name, fields in config_lib.flag_groups()
    ),
)
# What tells one data set from another: a run directory named after the data is used only with the same ones.
DATA_IDENTITY = ("train_file", "data_dir", "tfds_name", "task", "text_column", "text_pair_column", "label_column")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one flag per configuration field, with the field's default, help and allowed values."""
    for field in config_lib.flag_fields():
        default = field.default
        help_text = field.metadata["help"]
        if "choices" in field.metadata:
            flags.DEFINE_enum(field.name, default, field.metadata["choices"], help_text, flag_values=flag_values)
        else:
            _DEFINE_BY_TYPE[type(default)](field.name, default, help_text, flag_values=flag_values)


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> config_lib.RunConfig:
    """The validated run configuration; raises `config.ConfigError` naming the flag on a bad value."""
    values = {field.name: flag_values[field.name].value for field in config_lib.flag_fields()}
    return config_lib.RunConfig.from_flat(values)


def check_named_workdir(run_config: config_lib.RunConfig) -> None:
    """Raises `app.UsageError` when the run directory named after the data holds a run on other data (another
    file, or other columns of it): this run would clear its stages."""
    recorded = cache.read_json(os.path.join(run_config.workdir, "config.json"))
    if recorded is None:
        return
    theirs = _data_identity(recorded.get("data", {}))
    if theirs != _data_identity(dataclasses.asdict(run_config.data)):
        described = ", ".join(f"--{name}={value}" for name, value in theirs.items() if value)
        raise app.UsageError(
            f"{run_config.workdir} (named after the data) holds a run on other data ({described}): "
            "give this run its own --workdir"
        )


def _data_identity(data: dict[str, Any]) -> dict[str, str]:
    identity = {name: str(data.get(name, "")) for name in DATA_IDENTITY}
    for name in ("train_file", "data_dir"):  # the same file named from another directory is the same data
        identity[name] = os.path.abspath(identity[name]) if identity[name] else ""
    return identity


def main(argv: list[str]) -> int:
    def command() -> int:
        run_config = config_from_flags()
        if not flags.FLAGS["workdir"].value:
            check_named_workdir(run_config)
            print(f"Run directory: {run_config.workdir} (named after the data; --workdir chooses another)")
        with cli.quiet_tensorflow():
            from bilstm_kd.pipeline import runner  # imports TensorFlow: after the flags are known to be valid

        runner.run(run_config)
        return 0

    return cli.run_command(argv, command)


def run(argv: list[str] | None = None) -> None:
    """Parses the flags in `argv` (default: the command line) and trains; exits with the command's status."""
    app.run(main, argv, flags_parser=cli.flags_parser(HELP))


define_flags()

if __name__ == "__main__":
    run()
