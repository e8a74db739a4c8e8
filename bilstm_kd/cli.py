"""What the commands (`train`, `predict`, `evaluate`) share: the installed `bilstm-kd` command, a short `-h`,
one-line errors with status 2 for what a user can fix, the flags that say how a data file is read, and
TensorFlow kept quiet.

    bilstm-kd train --train_file my.csv --text_column text --label_column label
    bilstm-kd predict --model runs/my --input new.csv --output labelled.csv
    bilstm-kd evaluate --model runs/my --data test.csv

`python -m bilstm_kd.main`, `python -m bilstm_kd.predict` and `python -m bilstm_kd.evaluate` run the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Sequence

from absl import app, flags, logging

from bilstm_kd.config import ConfigError
from bilstm_kd.data.tables import FORMATS, DataError, TableFormat

USAGE_STATUS = 2
PROGRAM = "bilstm-kd"
COMMANDS = {"train": "bilstm_kd.main", "predict": "bilstm_kd.predict", "evaluate": "bilstm_kd.evaluate"}
HELP_ARGUMENTS = ("-h", "--help", "-help", "--helpshort", "-?")
TABLE_FLAGS = ("data_format", "delimiter", "header", "column_names", "encoding")


@dataclasses.dataclass(frozen=True)
class CommandHelp:
    """What `-h` shows of a command: how it is called, what it does and the flags a user needs first.

    Args:
        command: the command's name after `bilstm-kd`.
        usage: its arguments, e.g. "--model RUN [--input FILE|-]".
        summary: one sentence on what it does.
        first: the flags shown by `-h`, in this order; `--helpfull` shows every flag.
        groups: `--helpfull`'s sections: (title, flag names), after the command's other flags ("Flags").
    """

    command: str
    usage: str
    summary: str
    first: tuple[str, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


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


# ----------------------------------------------------------------------------------------------------------------
# The installed command and its help


def console(argv: Sequence[str] | None = None) -> None:
    """`bilstm-kd train|predict|evaluate [--flag=value ...]`: runs the command's module as `python -m` would."""
    argv = list(sys.argv if argv is None else argv)
    name = argv[1] if len(argv) > 1 else ""
    asked = name in (*HELP_ARGUMENTS, "--helpfull")
    if asked or name not in COMMANDS:
        print(_console_usage(), file=sys.stdout if asked else sys.stderr)
        if asked:
            sys.exit(0)
        sys.exit(fail(f"unknown command {name!r}" if name else "name a command: train, predict or evaluate"))
    importlib.import_module(COMMANDS[name]).run([f"{PROGRAM} {name}", *argv[2:]])


def _console_usage() -> str:
    return (
        f"Usage: {PROGRAM} COMMAND [--flag=value ...]\n\n"
        "  train      distil a BERT teacher into a small BiLSTM student on your data\n"
        "  predict    classify texts with a trained student\n"
        "  evaluate   score a trained student on a labelled file\n\n"
        f"`{PROGRAM} COMMAND -h` shows a command's main flags."
    )


def flags_parser(command_help: CommandHelp) -> Callable[[list[str]], list[str]]:
    """absl's flag parsing for `app.run`, with `-h`/`--help` and `--helpfull` printing this command's help and
    exiting 0, and a bad flag reported in one line with status 2 (absl exits with 1 for all three)."""

    def parse(argv: list[str]) -> list[str]:
        arguments = argv[1 : argv.index("--")] if "--" in argv else argv[1:]
        if any(argument in HELP_ARGUMENTS for argument in arguments):
            print(short_help(command_help))
            sys.exit(0)
        if "--helpfull" in arguments:
            print(full_help(command_help))
            sys.exit(0)
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            sys.exit(fail(f"{error} (--help shows the main flags, --helpfull all of them)"))

    return parse


def short_help(command_help: CommandHelp) -> str:
    lines = [*_heading(command_help), ""]
    lines += [_describe_flag(name) for name in command_help.first]
    lines += ["", "--helpfull lists every flag; --verbosity=0 shows TensorFlow's own logs."]
    return "\n".join(lines)


def full_help(command_help: CommandHelp) -> str:
    """Every flag of the command in sections, its own first; absl's own flags last, by name only."""
    own = [name for name in _defined_flags() if not _is_absl_flag(name)]
    grouped = {name for _, names in command_help.groups for name in names}
    groups = [("Flags", tuple(name for name in own if name not in grouped)), *command_help.groups]
    lines = _heading(command_help)
    for title, names in groups:
        if names:
            lines += ["", f"{title}:", *(_describe_flag(name) for name in names)]
    absl_flags = ", ".join(f"--{name}" for name in ("flagfile", *_defined_flags()) if _is_absl_flag(name))
    lines += ["", textwrap.fill(f"absl's own: {absl_flags}.", 110)]
    return "\n".join(lines)


def _heading(command_help: CommandHelp) -> list[str]:
    usage = f"Usage: {PROGRAM} {command_help.command} {command_help.usage}"
    return [usage, "", textwrap.fill(command_help.summary, 110)]


def _defined_flags() -> list[str]:
    """Every flag's long name, in the order the flags were defined."""
    return [name for name, flag in flags.FLAGS._flags().items() if name == flag.name]


def _is_absl_flag(name: str) -> bool:
    return name == "flagfile" or flags.FLAGS.find_module_defining_flag(name, default="").startswith("absl.")


def _describe_flag(name: str) -> str:
    if name == "flagfile":
        text = "Read flags from a file, one a line (flags/*.cfg: the demo and the paper's settings)."
    else:
        flag = flags.FLAGS[name]
        text = flag.help
        if flag.default not in (None, "", []):
            default = str(flag.default).lower() if isinstance(flag.default, bool) else flag.default
            text += f" (default: {default})"
    return textwrap.fill(text, 110, initial_indent=f"  --{name:<18} ", subsequent_indent=" " * 23)


# ----------------------------------------------------------------------------------------------------------------
# Running a command


def run_command(argv: list[str], command: Callable[[], int]) -> int:
    """Runs a command's body (after absl parsed its flags into `argv`): a user's error is one line on stderr
    and status 2; anything else is a bug and keeps its traceback."""
    try:
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])} (flags need a leading --)")
        if not flags.FLAGS["verbosity"].present:
            # TensorFlow logs every traced function and saved artifact at INFO; --verbosity=0 brings them back.
            logging.set_verbosity(logging.WARNING)
        return command()
    except (ConfigError, DataError, app.UsageError) as error:
        return fail(str(error))
    except Exception as error:
        if isinstance(error, user_errors()):
            return fail(str(error))
        raise


# TensorFlow's native start-up lines, and TFLite's XNNPACK line. Tried here, running `predict` on a run: an
# environment variable set before TensorFlow loads, TF_CPP_MIN_LOG_LEVEL=3, removes the lines logged after
# absl::InitializeLog (the error-level "failed call to cuInit"), but not those logged before it while TensorFlow's
# libraries load (the pre-init warning, oneDNN, "Could not find cuda drivers", the CPU-feature lines, twice), nor
# TFLite's. GRPC_VERBOSITY changes none of them, TF_ENABLE_ONEDNN_OPTS=0 only the oneDNN line (and the maths), and
# absl.logging is Python's only. So `quiet_tensorflow` also catches file descriptor 2, only for its block (the
# import of TensorFlow in `train`; loading and running the model in `predict` and `evaluate`) and writes every
# other line back when the block ends.
NATIVE_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|[IW]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\] "  # before InitializeLog the time reads 00:00:<epoch seconds>
    r"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
)


def tensorflow_logs_asked() -> bool:
    """--verbosity=0 (INFO) or more asks for TensorFlow's own logs."""
    verbosity = flags.FLAGS["verbosity"]
    return verbosity.present and verbosity.value >= 0


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Loads and runs TensorFlow inside the block without its start-up lines on stderr, unless --verbosity asks
    for them. TF_CPP_MIN_LOG_LEVEL (left alone when set already) follows --verbosity: 3 by default, else the
    levels --verbosity lets through (-1 warnings, -2 errors)."""
    verbosity = flags.FLAGS["verbosity"]
    level = min(3, max(0, -verbosity.value)) if verbosity.present else 3
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", str(level))
    if tensorflow_logs_asked():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not NATIVE_NOISE.match(line)))
            sys.stderr.flush()


# ----------------------------------------------------------------------------------------------------------------
# Reading a data file


def define_table_flags() -> None:
    """The flags of how a data file is read (as `main` names them): `TABLE_FLAGS`."""
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
