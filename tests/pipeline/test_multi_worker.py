"""MultiWorkerMirroredStrategy with two worker processes on localhost: the whole pipeline, a worker lost
mid-training and restarted, and labelling split between the workers."""

import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_pipeline import inputs, tiny_config  # noqa: F401 (a fixture)

from bilstm_kd import config as config_lib
from bilstm_kd.data.tasks import get_task
from bilstm_kd.student import models  # noqa: F401 (registers the student classes for loading)
from bilstm_kd.teacher.saving import load_fine_tuned_teacher
from bilstm_kd.transfer.labelling import label_transfer_set
from bilstm_kd.transfer.shards import ShardedRecords

WORKER = pathlib.Path(__file__).with_name("multi_worker_main.py")
TIMEOUT = 600


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def flags(config):
    """The command-line flags that give `config`."""
    values = {"workdir": config.workdir, "seed": config.seed, "stages": config.stages}
    for name in config_lib.SECTIONS:
        values.update(dataclasses.asdict(getattr(config, name)))
    return [f"--{name}={str(value).lower() if isinstance(value, bool) else value}" for name, value in values.items()]


def start_workers(config, log_directory, kill_at=None):
    addresses = [f"localhost:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        environment = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}),
        )
        environment.pop("KILL_AT", None)
        if index == 1 and kill_at:
            environment["KILL_AT"] = kill_at
        with open(log_directory / f"worker_{index}.log", "a") as log:  # the child keeps its own handle
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), *flags(config), "--strategy=multi_worker", "--backup_steps=2"],
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=pathlib.Path(__file__).parent,
                )
            )
    return processes


def wait(processes, timeout=TIMEOUT):
    codes = []
    try:
        for process in processes:
            codes.append(process.wait(timeout=timeout))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return codes


def student_weights(path):
    return [weight.numpy() for weight in keras.saving.load_model(path).weights]


def logs(log_directory):
    return "\n".join((log_directory / f"worker_{index}.log").read_text()[-3000:] for index in range(2))


@pytest.fixture(scope="module")
def trained(inputs, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("multi_worker")
    config = tiny_config(inputs, root / "run")
    codes = wait(start_workers(config, root))
    assert codes == [0, 0], logs(root)
    return config, pathlib.Path(config.workdir), root


def test_two_workers_run_the_pipeline_and_agree(trained):
    _, workdir, _ = trained
    chief_student = workdir / "student" / "distilled" / "student.keras"
    worker_student = workdir / "student" / "distilled" / "workers" / "worker_1" / "student.keras"
    for chief, other in zip(student_weights(chief_student), student_weights(worker_student), strict=True):
        np.testing.assert_allclose(other, chief, rtol=1e-6, atol=1e-7)
    # Only the chief exports and reports; the other worker's files stay in its own directory.
    assert (workdir / "export" / "student.tflite").exists()
    report = json.loads((workdir / "report.json").read_text())
    assert set(report["models"]) >= {"teacher", "student", "baseline", "student_tflite"}
    assert not any("worker_1" in str(path) for path in (workdir / "export").rglob("*"))
    records = [json.loads(path.read_text())["status"] for path in (workdir / "stages").glob("*.json")]
    assert records and set(records) == {"done"}


def test_labelling_with_two_workers_writes_what_one_process_writes(trained, tmp_path):
    config, workdir, _ = trained
    task = get_task(config.data.task)
    teacher_fingerprint = json.loads((workdir / "stages" / "teacher.json").read_text())["outputs"][
        "teacher_fingerprint"
    ]
    single = label_transfer_set(
        load_fine_tuned_teacher(workdir / "teacher"),
        ShardedRecords.open_existing(workdir / "transfer" / "augmented"),
        tmp_path / "labelled",
        task,
        batch_size=config.teacher.label_batch_size,
        teacher_fingerprint=teacher_fingerprint,
        verbose=0,
    )
    two_workers = ShardedRecords.open_existing(workdir / "transfer" / "labelled")
    assert two_workers.fingerprint == single.fingerprint and two_workers.is_complete()
    assert single.num_shards == 3
    for index in range(single.num_shards):
        assert (
            pathlib.Path(two_workers.shard_path(index)).read_bytes()
            == pathlib.Path(single.shard_path(index)).read_bytes()
        )


def test_a_lost_worker_restarts_and_the_workers_resume(inputs, tmp_path):  # noqa: F811
    config = tiny_config(inputs, tmp_path / "run")
    workdir = pathlib.Path(config.workdir)
    distilled = workdir / "student" / "distilled"
    # Worker 1 dies after the fourth batch of epoch 2, two batches after a mid-epoch backup.
    processes = start_workers(config, tmp_path, kill_at="1,3")
    assert processes[1].wait(timeout=TIMEOUT) == 17, logs(tmp_path)
    # The survivor notices (its peer stopped sending heartbeats) and fails; a cluster manager restarts both.
    assert wait(processes[:1], timeout=120) != [0]
    for directory in (distilled, distilled / "workers" / "worker_1"):
        state = json.loads((directory / "training_state.json").read_text())
        assert state["epochs_completed"] == 1 and not state["finished"]
    backup = json.loads((distilled / "workers" / "worker_1" / "backup" / "training_metadata.json").read_text())
    assert backup["epoch"] == 1 and backup["batch"] >= 1  # a mid-epoch backup of epoch 2
    first_epoch = state["history"]["loss"][0]

    assert wait(start_workers(config, tmp_path)) == [0, 0], logs(tmp_path)
    assert "[distill] resuming an interrupted run" in (tmp_path / "worker_0.log").read_text()
    for directory in (distilled, distilled / "workers" / "worker_1"):
        state = json.loads((directory / "training_state.json").read_text())
        assert state["finished"] and state["epochs_completed"] == 3
        assert len(state["history"]["loss"]) == 3 and state["history"]["loss"][0] == first_epoch
        assert not (directory / "backup").exists()  # removed once training ended
    for chief, other in zip(
        student_weights(distilled / "student.keras"),
        student_weights(distilled / "workers" / "worker_1" / "student.keras"),
        strict=True,
    ):
        np.testing.assert_allclose(other, chief, rtol=1e-6, atol=1e-7)
    assert (workdir / "report.json").exists()
