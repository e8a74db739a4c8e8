"""Saving fine-tuned teachers and loading them back: one `.keras` file and a `teacher.json` record per teacher
(ensemble members 2..N in `member_2/` ... beside the first)."""

from __future__ import annotations

import os
from typing import Any

import keras

from bilstm_kd import cache
from bilstm_kd.teacher import mpnet  # noqa: F401 (registers the MPNet classes that a saved teacher may name)
from bilstm_kd.teacher.model import BertTeacher, TeacherEnsemble
from bilstm_kd.teacher.precision import FLOAT32

TEACHER_FILE = "teacher.keras"
TEACHER_METADATA = "teacher.json"


def read_metadata(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The `teacher.json` record of a fine-tuning in `directory`, or None."""
    return cache.read_json(os.path.join(directory, TEACHER_METADATA))


def save_teacher(teacher: BertTeacher, path: str | os.PathLike) -> None:
    """Saves a teacher as one `.keras` file (config, weights, vocabulary), without optimizer state.

    Keras writes a compiled model's optimizer into `.keras` files (AdamW's two moments would triple the size),
    so the weights are copied into an uncompiled twin that shares the preprocessor. The twin is float32
    whatever precision the teacher was fine-tuned in: precision is chosen when loading. The file is written
    under a temporary name and renamed, so `path` is never half written.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"A teacher is saved as a .keras file, received path={path!r}")
    twin = teacher.with_precision(FLOAT32)
    partial = path[: -len(".keras")] + ".partial.keras"
    twin.save(partial)
    os.replace(partial, path)


def member_directories(directory: str | os.PathLike, members: int) -> list[str]:
    """Where `fine_tune_teacher` keeps each of `members` teachers: the first in `directory` itself (so a
    single teacher's layout is unchanged), the others in `member_2/`, `member_3/`, ... inside it."""
    directory = os.fspath(directory)
    return [directory] + [os.path.join(directory, f"member_{number}") for number in range(2, members + 1)]


def load_fine_tuned_teacher(
    directory: str | os.PathLike, members: int = 1, dtype_policy: str = FLOAT32
) -> BertTeacher | TeacherEnsemble:
    """Reloads the teacher that `fine_tune_teacher` saved in `directory` (with `members` > 1, the ensemble),
    computing in `dtype_policy` (e.g. `precision.precision_policy("auto")`)."""
    teachers = []
    for member_directory in member_directories(directory, members):
        path = os.path.join(member_directory, TEACHER_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No fine-tuned teacher at {path}: run the teacher stage first")
        teacher = keras.saving.load_model(path, compile=False)
        teachers.append(teacher if teacher.precision == dtype_policy else teacher.with_precision(dtype_policy))
    return teachers[0] if members == 1 else TeacherEnsemble(teachers)


def saved_teacher_fingerprint(directory: str | os.PathLike, members: int = 1) -> str:
    """The identity of the fine-tuned teacher in `directory` (a hash of its saved weights and settings;
    with `members` > 1, of every member's)."""
    fingerprints = []
    for member_directory in member_directories(directory, members):
        metadata = read_metadata(member_directory)
        if not metadata or not metadata.get("complete"):
            raise FileNotFoundError(
                f"{member_directory} holds no finished teacher fine-tuning ({TEACHER_METADATA} is missing)"
            )
        fingerprints.append(metadata["teacher_fingerprint"])
    return fingerprints[0] if members == 1 else cache.fingerprint({"ensemble": fingerprints})
