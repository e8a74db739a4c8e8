"""Distil a task-specific BERT into a BiLSTM student.

    python -m bilstm_kd.main --flagfile flags/sst2.cfg [--flag=value ...]

    python -m bilstm_kd.main --train_file my.csv --text_column text --label_column label --workdir runs/mine

Every flag is a field of the run configuration (bilstm_kd/config.py); `--helpfull` lists them all. This
is the only module that reads flags: it validates them into a frozen `RunConfig` and hands it, with the
run directory, to `bilstm_kd.pipeline.runner.run`. A user's error (a bad flag, bad data, a missing file)
prints one line and exits with status 2; a traceback means a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app, flags, logging

from bilstm_kd import config as config_lib
from bilstm_kd.data.tables import DataError

USAGE_STATUS = 2


def user_errors() -> tuple[type[Exception], ...]:
    """The errors a user can act on: each names the flag, file or value to change. Imported late: some live in
    modules that load TensorFlow."""
    from bilstm_kd.distill.training import TrainingDivergedError
    from bilstm_kd.pipeline.runner import StageError
    from bilstm_kd.text.embeddings import EmbeddingFileError
    from bilstm_kd.text.pos import TaggerUnavailableError

    return (
        config_lib.ConfigError,
        DataError,
        StageError,
        EmbeddingFileError,
        TaggerUnavailableError,
        TrainingDivergedError,
        FileNotFoundError,
    )


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return USAGE_STATUS


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad flag reported in one line and status 2 (absl exits with 1)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.exit(fail(f"{error} (--helpfull lists the flags)"))


def run_command(command: Callable[[], int], known_errors: Callable[[], tuple[type[Exception], ...]]) -> int:
    """Runs a command's body: a `known_errors()` error is one line on stderr and status 2."""
    try:
        return command()
    except (config_lib.ConfigError, DataError, app.UsageError) as error:
        return fail(str(error))
    except Exception as error:
        if isinstance(error, known_errors()):
            return fail(str(error))
        raise


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
    """The validated run configuration; raises `app.UsageError` naming the flag on a bad value."""
    values = {field.name: flag_values[field.name].value for field in config_lib.flag_fields()}
    return config_lib.RunConfig.from_flat(values)


def quiet_tensorflow() -> None:
    if not flags.FLAGS["verbosity"].present:
        # TensorFlow logs every traced function and saved artifact at INFO; --verbosity=0 brings them back.
        logging.set_verbosity(logging.WARNING)


def main(argv: list[str]) -> int:
    def command() -> int:
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])} (flags need a leading --)")
        run_config = config_from_flags()
        quiet_tensorflow()
        from bilstm_kd.pipeline import runner  # imports TensorFlow: after the flags are known to be valid

        runner.run(run_config)
        return 0

    return run_command(command, user_errors)


define_flags()

if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
