"""The layout of a run directory: `RunPaths`."""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where each part of a run lives in its directory (see `runner`); `RunPaths.of(workdir)` lays them out."""

    workdir: str
    stages: str
    teacher: str
    pos: str
    augmented: str
    labelled: str
    vocabulary: str
    embeddings: str
    distill: str
    baseline: str
    tfidf: str
    export: str

    @classmethod
    def of(cls, workdir: str) -> RunPaths:
        def inside(*parts: str) -> str:
            return os.path.join(workdir, *parts)

        return cls(
            workdir=workdir,
            stages=inside("stages"),
            teacher=inside("teacher"),
            pos=inside("transfer", "pos"),
            augmented=inside("transfer", "augmented"),
            labelled=inside("transfer", "labelled"),
            vocabulary=inside("student", "vocab.txt"),
            embeddings=inside("student", "embeddings.npz"),
            distill=inside("student", "distilled"),
            baseline=inside("student", "baseline"),
            tfidf=inside("tfidf"),
            export=inside("export"),
        )
