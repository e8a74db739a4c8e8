"""Writes the flags reference (docs/flags.md) from the run configuration's dataclasses.

    python -m bilstm_kd.flags_reference > docs/flags.md         # regenerate
    python -m bilstm_kd.flags_reference --check docs/flags.md   # exit 1 if the file is stale

Every run flag is a field of a section of `bilstm_kd.config` (declared with `_field(default, help, choices)`),
and `bilstm_kd/main.py` defines the flags from those fields; this script lists the same fields, section by
section, so the reference cannot drift from the code unnoticed. Importing the configuration does not load
TensorFlow, so this runs in a second.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from bilstm_kd import config

COMMAND = "python -m bilstm_kd.flags_reference > docs/flags.md"
HEADER = f"""# Flags reference

<!-- Generated from bilstm_kd/config.py by `{COMMAND}`.
Do not edit by hand: tests/test_docs.py fails when this file and the configuration differ. -->

Every flag of `python -m bilstm_kd.main` is a field of the frozen run configuration (`bilstm_kd/config.py`),
listed here section by section in the order the configuration declares them (`--helpfull` prints the same
flags). Values are checked once, before any stage runs: a bad value stops the run with a message naming the
flag. A boolean flag `--name` is switched off with `--noname`. Flags can also come from a file, one flag per
line: `--flagfile flags/sst2_cpu.cfg`.
"""


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value == "":
        return '`""` (empty)'
    return f"`{value}`"


def _row(field: dataclasses.Field) -> str:
    choices = field.metadata.get("choices")
    allowed = ", ".join(_value(choice) for choice in choices) if choices else ""
    cells = (f"`--{field.name}`", type(field.default).__name__, _value(field.default), allowed, field.metadata["help"])
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _table(title: str, fields: Sequence[dataclasses.Field]) -> str:
    lines = [f"## {title}", "", "| flag | type | default | allowed | what it does |", "|---|---|---|---|---|"]
    return "\n".join(lines + [_row(field) for field in fields])


def render() -> str:
    """The whole reference: the run-wide flags, then one table per configuration section."""
    run_fields = [field for field in dataclasses.fields(config.RunConfig) if field.name not in config.SECTIONS]
    tables = [_table("Run (`RunConfig`)", run_fields)]
    for name, section in config.SECTIONS.items():
        tables.append(_table(f"{name.capitalize()} (`{section.__name__}`)", dataclasses.fields(section)))
    return HEADER + "\n" + "\n\n".join(tables) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", metavar="FILE", help="compare FILE with the reference instead of printing it")
    args = parser.parse_args(argv)
    reference = render()
    if args.check is None:
        sys.stdout.write(reference)
        return 0
    try:
        with open(args.check, encoding="utf-8") as file:
            current = file.read()
    except FileNotFoundError:
        current = None
    if current != reference:
        state = "is missing" if current is None else "is stale: it differs from what bilstm_kd/config.py declares"
        print(f"{args.check} {state}. Regenerate it with `{COMMAND}`.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
