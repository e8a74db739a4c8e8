"""Sharded TFRecord stores that a killed run can resume and a changed config invalidates.

A store is a directory with `manifest.json` (the fingerprint of everything its contents depend on, and
the number of shards) and shards `shard-00003-of-00008.tfrecord`. Each shard is written to a temporary
name and renamed when complete, so a shard file that exists is whole; a half-written one never is. When
the fingerprint in the manifest differs from the one asked for, the old contents are removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

import tensorflow as tf

from bilstm_kd.cache import fingerprint, read_json, write_json

MANIFEST = "manifest.json"


class ShardedRecords:
    """A directory of TFRecord shards with a fingerprint.

    Args:
        directory: where the shards and `manifest.json` live.
        fingerprint_values: everything the contents depend on (settings, input hashes, model identity).
        num_shards: how many shards the store has.

    Example:
    >>> store = ShardedRecords("/tmp/store", {"seed": 0}, num_shards=2)
    >>> for index in store.missing_shards():
    ...     store.write_shard(index, [b"record"])
    >>> store.finish({"examples": 2})
    """

    def __init__(self, directory: str | os.PathLike, fingerprint_values: Mapping[str, Any], num_shards: int):
        if num_shards < 1:
            raise ValueError(f"`num_shards` must be at least 1, received num_shards={num_shards}")
        self.directory = os.fspath(directory)
        self.fingerprint_values = dict(fingerprint_values)
        self.fingerprint = fingerprint(self.fingerprint_values)
        self.num_shards = num_shards
        self._prepare()

    @classmethod
    def open_existing(cls, directory: str | os.PathLike) -> ShardedRecords:
        """An existing store, opened for reading: unlike the constructor it never clears anything."""
        directory = os.fspath(directory)
        manifest = read_json(os.path.join(directory, MANIFEST))
        if manifest is None:
            raise FileNotFoundError(f"No readable sharded store in {directory} (its {MANIFEST} is missing)")
        store = cls.__new__(cls)
        store.directory = directory
        store.fingerprint_values = manifest.get("depends_on", {})
        store.fingerprint = manifest["fingerprint"]
        store.num_shards = manifest["num_shards"]
        return store

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.directory, MANIFEST)

    def shard_path(self, index: int) -> str:
        return os.path.join(self.directory, f"shard-{index:05d}-of-{self.num_shards:05d}.tfrecord")

    def _read_manifest(self) -> dict[str, Any] | None:
        return read_json(self.manifest_path)

    def _write_manifest(self, manifest: Mapping[str, Any]) -> None:
        write_json(self.manifest_path, manifest)

    def _prepare(self) -> None:
        manifest = self._read_manifest()
        if manifest is not None and (
            manifest.get("fingerprint") == self.fingerprint and manifest.get("num_shards") == self.num_shards
        ):
            return
        if os.path.isdir(self.directory):
            shutil.rmtree(self.directory)
        os.makedirs(self.directory)
        self._write_manifest(
            {
                "fingerprint": self.fingerprint,
                "depends_on": self.fingerprint_values,
                "num_shards": self.num_shards,
                "complete": False,
            }
        )

    @property
    def manifest(self) -> dict[str, Any]:
        manifest = self._read_manifest()
        if manifest is None:
            raise FileNotFoundError(f"{self.manifest_path} is missing or unreadable")
        return manifest

    def is_complete(self) -> bool:
        return bool(self.manifest.get("complete")) and not self.missing_shards()

    def missing_shards(self) -> list[int]:
        """Shards not yet written completely."""
        return [index for index in range(self.num_shards) if not os.path.exists(self.shard_path(index))]

    def write_shard(self, index: int, records: Iterable[bytes]) -> int:
        """Writes one shard atomically; returns the number of records written."""
        if not 0 <= index < self.num_shards:
            raise IndexError(f"Shard {index} is out of range for {self.num_shards} shards")
        temporary = self.shard_path(index) + ".tmp"
        count = 0
        with tf.io.TFRecordWriter(temporary) as writer:
            for record in records:
                writer.write(record)
                count += 1
        os.replace(temporary, self.shard_path(index))
        return count

    def finish(self, statistics: Mapping[str, Any] | None = None) -> None:
        """Marks the store complete once every shard exists, recording `statistics` in the manifest."""
        missing = self.missing_shards()
        if missing:
            raise RuntimeError(f"{self.directory}: cannot finish with shards {missing} missing")
        manifest = self.manifest
        manifest.update(complete=True, statistics=dict(statistics or {}))
        self._write_manifest(manifest)

    def paths(self) -> list[str]:
        return [self.shard_path(index) for index in range(self.num_shards)]

    def dataset(self) -> tf.data.TFRecordDataset:
        """The serialized records of all shards, in shard order."""
        if not self.is_complete():
            raise RuntimeError(f"{self.directory} is incomplete: shards {self.missing_shards()} are missing")
        return tf.data.TFRecordDataset(self.paths())
