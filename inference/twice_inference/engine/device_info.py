"""Which device the worker computes on, and the ``WorkerInfo`` recorded next to every result
(versions, GPU, driver) so numbers from different machines can be told apart.
Tested in ``tests/test_activities.py`` (describe_worker)."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import socket
import subprocess

import torch

from twice_inference import __version__
from twice_inference.contract import WorkerInfo

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str) -> torch.device:
    """'auto' -> the first CUDA device if there is one, else CPU. Asking for CUDA on a machine
    without it is an error, not a silent fallback: results would be recorded under the wrong
    hardware."""
    if requested not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {requested!r}")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(requested)


@functools.lru_cache(maxsize=1)
def nvidia_driver_version() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None where it is absent or fails."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        completed = subprocess.run(
            [executable, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = completed.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


def worker_info(device: torch.device) -> WorkerInfo:
    on_cuda = device.type == "cuda"
    return WorkerInfo(
        worker_version=__version__,
        python=platform.python_version(),
        torch=torch.__version__,
        device=str(device),
        gpu_name=torch.cuda.get_device_name(device) if on_cuda else None,
        driver=nvidia_driver_version() if on_cuda else None,
        cuda=torch.version.cuda if on_cuda else None,
        hostname=socket.gethostname(),
        pid=os.getpid(),
    )
