"""What the commands (`main`, `predict`, `evaluate`) share: one-line errors with status 2 for what a user can
fix, the flags that say how a data file is read, and quiet TensorFlow logs."""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app, flags, logging

from bilstm_kd.config import ConfigError
from bilstm_kd.data.tables import FORMATS, DataError, TableFormat

USAGE_STATUS = 2


def user_errors() -> tuple[type[Exception], ...]:
    """The errors a user can act on: each names the flag, file or value to change. Imported late: some live in
    modules that load TensorFlow."""
    from bilstm_kd.distill.training import TrainingDivergedError
    from bilstm_kd.pipeline.runner import StageError
    from bilstm_kd.text.embeddings import EmbeddingFileError
    from bilstm_kd.text.pos import TaggerUnavailableError

    return (StageError, EmbeddingFileError, TaggerUnavailableError, TrainingDivergedError, FileNotFoundError)


def fail(message: str) -> int:
    """Prints `error: message` on stderr; returns the usage status."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return USAGE_STATUS


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad flag reported in one line and status 2 (absl exits with 1)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.exit(fail(f"{error} (--helpfull lists the flags)"))


def run_command(argv: list[str], command: Callable[[], int]) -> int:
    """Runs a command's body (after absl parsed its flags into `argv`): a user's error is one line on stderr
    and status 2; anything else is a bug and keeps its traceback."""
    try:
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])} (flags need a leading --)")
        quiet_tensorflow()
        return command()
    except (ConfigError, DataError, app.UsageError) as error:
        return fail(str(error))
    except Exception as error:
        if isinstance(error, user_errors()):
            return fail(str(error))
        raise


def quiet_tensorflow() -> None:
    if not flags.FLAGS["verbosity"].present:
        # TensorFlow logs every traced function and saved artifact at INFO; --verbosity=0 brings them back.
        logging.set_verbosity(logging.WARNING)


def define_table_flags() -> None:
    """The flags of how a data file is read (as `main` names them)."""
    flags.DEFINE_enum("data_format", "auto", FORMATS, "Format of the data file (auto: by extension).")
    flags.DEFINE_string("delimiter", "", "Field delimiter of CSV/TSV files (empty: ',' for CSV, a tab for TSV).")
    flags.DEFINE_bool("header", True, "The first line of a CSV/TSV file names its columns.")
    flags.DEFINE_list("column_names", [], "Column names of a CSV/TSV file without a header row.")
    flags.DEFINE_string("encoding", "utf-8", "Text encoding of the data file.")


def table_format_from_flags() -> TableFormat:
    values = flags.FLAGS
    try:
        return TableFormat(
            values.data_format, values.delimiter, values.header, tuple(values.column_names), values.encoding
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
