"""Small file helpers shared by the stages."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any


def write_json(path: str | os.PathLike, values: Any, default: Callable[[Any], Any] = str) -> None:
    """Writes JSON atomically (a temporary file renamed into place): a reader never sees half a file."""
    temporary = f"{os.fspath(path)}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(values, file, indent=2, sort_keys=True, default=default)
        file.write("\n")
    os.replace(temporary, path)
