"""``python -m twice_inference.train``: one config, every config, or the manifest only."""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import CONFIG_DIR, ZOO_DIR, load_config
from .loop import train
from .manifest import write_manifest
from .scheduler import run_in_processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twice_inference.train")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", type=Path, help="one zoo/configs/<name>.json")
    which.add_argument("--all", action="store_true", help="every config in zoo/configs")
    which.add_argument(
        "--manifest-only",
        action="store_true",
        help="rebuild manifest.json from the models under --out",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ZOO_DIR)
    parser.add_argument("--steps", type=int, help="override each config's steps")
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes per model")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="with --all: models trained at once, each in its own process, spread evenly "
        "over the visible GPUs",
    )
    parser.add_argument("--time-limit", type=float, help="seconds per model before stopping")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.manifest_only:
        write_manifest(args.out)
        return 0
    if args.config:
        train(
            load_config(args.config),
            args.out,
            args.device,
            args.steps,
            args.workers,
            args.time_limit,
        )
        write_manifest(args.out)
        return 0
    configs = sorted(CONFIG_DIR.glob("*.json"))
    if args.jobs <= 1:
        for path in configs:
            train(
                load_config(path), args.out, args.device, args.steps, args.workers, args.time_limit
            )
    else:
        run_in_processes(configs, args)
    write_manifest(args.out)
    return 0
