"""Distil a task-specific BERT into a BiLSTM student.

    python -m bilstm_kd.main --flagfile flags/sst2.cfg [--flag=value ...]

    python -m bilstm_kd.main --train_file my.csv --text_column text --label_column label --workdir runs/mine

Every flag is a field of the run configuration (bilstm_kd/config.py); `--helpfull` lists them all. This
is the only module that reads the run flags: it validates them into a frozen `RunConfig` and hands it, with the
run directory, to `bilstm_kd.pipeline.runner.run`. A user's error (a bad flag, bad data, a missing file)
prints one line and exits with status 2; a traceback means a bug.
"""

from __future__ import annotations

from absl import app, flags

from bilstm_kd import cli
from bilstm_kd import config as config_lib

_DEFINE_BY_TYPE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


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


def main(argv: list[str]) -> int:
    def command() -> int:
        run_config = config_from_flags()
        from bilstm_kd.pipeline import runner  # imports TensorFlow: after the flags are known to be valid

        runner.run(run_config)
        return 0

    return cli.run_command(argv, command)


define_flags()

if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
