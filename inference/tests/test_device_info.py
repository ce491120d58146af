"""Device resolution refuses what the machine cannot do, and WorkerInfo describes the device the
worker really computes on (GPU name, driver and CUDA version only when that device is a GPU)."""

from __future__ import annotations

import os
import platform

import pytest
import torch

from twice_inference import __version__
from twice_inference.engine.device_info import nvidia_driver_version, resolve_device, worker_info


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected_auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected_auto
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_on_a_cpu_machine_is_an_error() -> None:
    with pytest.raises(ValueError, match="cuda"):
        resolve_device("cuda")


def test_cpu_worker_info() -> None:
    info = worker_info(torch.device("cpu"))
    assert info.worker_version == __version__
    assert info.python == platform.python_version() and info.torch == torch.__version__
    assert info.device == "cpu" and info.pid == os.getpid()
    assert info.gpu_name is None and info.driver is None and info.cuda is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_worker_info() -> None:
    info = worker_info(resolve_device("cuda"))
    assert info.device == "cuda"
    assert info.gpu_name == torch.cuda.get_device_name(0)
    assert info.cuda == torch.version.cuda
    driver = nvidia_driver_version()
    assert info.driver == driver
    if driver is not None:
        assert driver[0].isdigit(), driver
    print(info.to_json())
