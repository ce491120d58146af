"""Several models trained at once, each in its own process, spread evenly over the visible GPUs."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch


def visible_gpus(device: str) -> list[str]:
    """The GPU ids this process may hand to its children: the inherited CUDA_VISIBLE_DEVICES list
    when set (so a child pinned to "2" means physical GPU 2, not the parent's third), else every
    GPU torch sees. Empty unless ``device`` is plain "cuda": an explicit "cuda:N" pins it."""
    if device != "cuda":
        return []
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    if inherited is not None:
        return [gpu.strip() for gpu in inherited.split(",") if gpu.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def least_busy_gpu(gpus: list[str], busy: list[str]) -> str:
    """The GPU running the fewest of our jobs (the first such in ``gpus`` order), so --jobs 6 on
    two GPUs puts three on each and a job that ends frees a slot on its own GPU."""
    return min(gpus, key=lambda gpu: (busy.count(gpu), gpus.index(gpu)))


def run_in_processes(configs: list[Path], args: argparse.Namespace) -> None:
    """Tiny models leave an accelerator mostly idle, so several train side by side, spread evenly
    over the GPUs when there are several (each child sees only its own GPU)."""
    pending = list(configs)
    running: list[tuple[Path, subprocess.Popen, str]] = []
    failed = []
    gpus = visible_gpus(args.device)
    while pending or running:
        while pending and len(running) < args.jobs:
            path = pending.pop(0)
            command = [
                sys.executable,
                "-m",
                "twice_inference.train",
                "--config",
                str(path),
                "--device",
                args.device,
                "--out",
                str(args.out),
                "--workers",
                str(args.workers),
            ]
            if args.steps:
                command += ["--steps", str(args.steps)]
            if args.time_limit:
                command += ["--time-limit", str(args.time_limit)]
            env = dict(os.environ)
            gpu = ""
            if len(gpus) > 1:
                gpu = least_busy_gpu(gpus, [g for _, _, g in running])
                env["CUDA_VISIBLE_DEVICES"] = gpu
            print(f"[train] {path.stem} on {'GPU ' + gpu if gpu else args.device}", flush=True)
            running.append((path, subprocess.Popen(command, env=env), gpu))
        time.sleep(0.5)
        for item in list(running):
            code = item[1].poll()
            if code is not None:
                running.remove(item)
                if code != 0:
                    failed.append(f"{item[0].name} (exit {code})")
    if failed:
        raise SystemExit(f"training failed for: {', '.join(failed)}")
