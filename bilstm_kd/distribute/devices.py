"""What the machine's accelerators can do: a GPU or TPU to run on, and the number formats the CPU has.

The students pick their LSTM kernel from this (`student.layers.MaskedBiLSTM`) and the teacher its
precision (`teacher.precision`).
"""

from __future__ import annotations

import functools
import os

import tensorflow as tf


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(tf.config.list_logical_devices("GPU"))


def has_tpu() -> bool:
    """Whether TensorFlow sees a TPU (one initialised by a `--strategy=tpu` run)."""
    return bool(tf.config.list_logical_devices("TPU"))


@functools.cache
def cpu_has_bfloat16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (x86 AVX512_BF16 or AMX, Arm BF16), which oneDNN uses for
    TensorFlow's bfloat16 matrix products. Read from /proc/cpuinfo: False where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            flags = {flag for line in file if line.startswith(("flags", "Features")) for flag in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def describe() -> dict[str, object]:
    """The devices a figure was measured on, for benchmark output."""
    return {
        "gpus": [device.name for device in tf.config.list_logical_devices("GPU")],
        "gpu_names": [
            tf.config.experimental.get_device_details(device).get("device_name", "")
            for device in tf.config.list_physical_devices("GPU")
        ],
        "tpus": len(tf.config.list_logical_devices("TPU")),
        "cpu_threads": os.cpu_count(),
        "cpu_bfloat16": cpu_has_bfloat16(),
    }
