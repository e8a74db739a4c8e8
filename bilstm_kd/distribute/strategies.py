"""Where the work runs: `tf.distribute` strategies for teacher fine-tuning, labelling and distillation.

`--strategy` picks one (`make_strategy`):

    default       TensorFlow's default placement (the first GPU if there is one, else the CPU)
    one_device    one device, `--devices` (default: the first GPU, else the CPU)
    mirrored      synchronous data parallelism over this machine's GPUs (or `--devices`)
    multi_worker  synchronous data parallelism over several machines, each described by TF_CONFIG
    tpu           a Cloud TPU (`--tpu`: its name or grpc:// address; empty means a TPU VM's local TPU)

Batch sizes in the configuration are global: a step of `--batch_size=256` on 4 replicas gives each 64
examples, so a run gives the same result whatever the number of replicas. Models and optimizers are
created inside `strategy.scope()`; Keras' `fit` splits each batch across the replicas.

Several workers (`multi_worker`) share one run directory, which must be on a file system they all see.
The chief (TF_CONFIG task `chief`, or `worker` 0 when there is none) writes the stage records, the
checkpoints, the exports and the report; the other workers write only their own shards of the labelled
transfer set and their own backups, and wait for the chief at `barrier`s.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from bilstm_kd.distribute import STRATEGIES


def _device_list(devices: str) -> list[str] | None:
    names = [name.strip() for name in devices.split(",") if name.strip()]
    return names or None


def make_strategy(name: str = "default", devices: str = "", tpu: str = "") -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

    Args:
        name: `--strategy`.
        devices: `--devices`, comma-separated TensorFlow device names for `one_device` (the first one)
            and `mirrored` (all of them), e.g. `/gpu:0,/gpu:1`; empty means all GPUs, else the CPU.
        tpu: `--tpu`, the TPU name or `grpc://` address for `tpu`.

    `multi_worker` must be created before TensorFlow runs any operation (the pipeline creates it first).
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy={name!r} is not allowed: must be one of {', '.join(STRATEGIES)}")
    device_names = _device_list(devices)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        if device_names is None:
            device_names = ["/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"]
        return tf.distribute.OneDeviceStrategy(device_names[0])
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(device_names)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable describing the cluster and "
                "this worker's place in it (see docs/accelerators.md, 'Several machines')"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _cluster(strategy: tf.distribute.Strategy) -> tuple[str | None, int, dict[str, list[str]]]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return None, 0, {}
    return resolver.task_type, int(resolver.task_id or 0), resolver.cluster_spec().as_dict()


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """How many worker processes share the work (1 for every strategy but `multi_worker`)."""
    _, _, cluster = _cluster(strategy)
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This worker's place among `worker_count` (the chief is 0)."""
    task_type, task_id, cluster = _cluster(strategy)
    if task_type is None:
        return 0
    if task_type == "chief":
        return 0
    return task_id + len(cluster.get("chief", []))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's shared files (always, except on `multi_worker` non-chiefs)."""
    return worker_index(strategy) == 0


def worker_name(strategy: tf.distribute.Strategy) -> str:
    """A name for this worker's own files, e.g. `worker_1` (`chief` on a single machine)."""
    task_type, task_id, _ = _cluster(strategy)
    return "chief" if task_type is None else f"{task_type}_{task_id}"


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Blocks until every worker has reached this point (a no-op with one worker).

    Every worker must call it the same number of times: it is an all-reduce over the workers.
    """
    if worker_count(strategy) > 1:
        strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Lets `multi_worker` split a dataset element by element, whatever its source.

    Every worker reads the whole dataset, in the same order (same shuffle seeds), and keeps its share of each
    global batch; file-based sharding would instead hand whole shards of the transfer set to each worker.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def local_strategy(strategy: tf.distribute.Strategy) -> tf.distribute.Strategy:
    """The strategy for work that each worker does on its own (labelling its shards).

    `multi_worker` keeps this worker's devices (one replica per local GPU, or the CPU); every other
    strategy is already local.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy
    devices = list(strategy.extended.worker_devices)
    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(devices)


def describe(strategy: tf.distribute.Strategy) -> dict[str, object]:
    """A JSON-able summary for logs and the report."""
    return {
        "strategy": type(strategy).__name__,
        "replicas": int(strategy.num_replicas_in_sync),
        "workers": worker_count(strategy),
        "worker": worker_index(strategy),
        "tf_config": json.loads(os.environ.get("TF_CONFIG", "null")),
    }


def replica_logs(logs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """A train or test step's logs, shaped so that Keras can average them across `multi_worker` replicas.

    Keras averages each replica's logs with `strategy.reduce("MEAN", value, axis=0)` under multi-worker
    strategies, which fails on scalars (tensorflow/tensorflow#72388); as vectors of one value it works.
    """
    if not (tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context()):
        return logs
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


class MultiWorkerFixes:
    """Mixin for `keras.Model` subclasses so that Keras 3's `fit` works under `multi_worker`.

    - Before training under a strategy, Keras builds the model from a first batch averaged across replicas
      with one `strategy.reduce` call on the whole nested batch, which `MultiWorkerMirroredStrategy`
      rejects for dicts and tuples (keras-team/keras#20329): here it is averaged tensor by tensor.
    - Step logs are made averageable across workers (`replica_logs`).
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda value: (
                        strategy.reduce("MEAN", value, axis=None)
                        if isinstance(value, tf.distribute.DistributedValues)
                        else value
                    ),
                    next(batches),
                )
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def get_metrics_result(self):
        return replica_logs(super().get_metrics_result())
