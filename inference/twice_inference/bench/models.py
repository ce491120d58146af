"""The model benchmark's command: ``python -m twice_inference.bench.models`` (``--help``). Check
mode (``bench.model_check``): agreement of the parallel and recurrent forms plus prefill
throughput per family; throughput mode (``bench.model_throughput``): tokens/s at several lengths,
kernel vs PyTorch path for Based/JRT-RNN. Prints a markdown table and writes JSON. Tested in
``tests/test_bench_models.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from ..models.registry import DTYPES
from . import model_check, model_throughput
from .model_common import log


def emit(report: dict[str, Any], out: Path | None) -> None:
    """Print the report's table; write the whole report as JSON when asked."""
    print("\n" + report["table"], flush=True)
    if out:
        out.write_text(json.dumps(report, indent=2, default=str))
        log(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twice_inference.bench.models")
    parser.add_argument(
        "--mode",
        default="check",
        choices=("check", "throughput"),
        help="check: agreement + prefill at --seq/--batch; throughput: tokens/s at --lengths, "
        "kernel vs torch path for Based/JRT-RNN",
    )
    parser.add_argument("--families", default="all", help="'all' or a comma list")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--check-len", type=int, default=256)
    parser.add_argument("--budget-s", type=float, default=30.0, help="timing budget per family")
    parser.add_argument("--lengths", default="2048,8192", help="throughput: comma list")
    parser.add_argument(
        "--runs", type=int, default=model_throughput.THROUGHPUT_RUNS, help="throughput: timed runs"
    )
    parser.add_argument("--point-budget-s", type=float, default=12.0, help="throughput")
    parser.add_argument("--total-budget-s", type=float, default=240.0, help="throughput")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    if args.mode == "throughput":
        try:
            lengths = [int(n) for n in args.lengths.split(",") if n.strip()]
        except ValueError:
            parser.error(f"--lengths must be a comma list of integers, got {args.lengths!r}")
        report = model_throughput.run_throughput(
            args.families,
            device=args.device,
            dtype=args.dtype,
            lengths=lengths,
            batch=args.batch,
            runs=args.runs,
            point_budget_s=args.point_budget_s,
            total_budget_s=args.total_budget_s,
            seed=args.seed,
        )
        emit(report, args.out)
        failed = [r for r in report["rows"] if r.get("errors")]
        failed += [p for r in report["rows"] for p in r.get("points", {}).values() if "error" in p]
        return 1 if failed else 0
    report = model_check.run(
        args.families,
        device=args.device,
        dtype=args.dtype,
        seq=args.seq,
        batch=args.batch,
        check_len=args.check_len,
        budget_s=args.budget_s,
        seed=args.seed,
    )
    emit(report, args.out)
    failed = [r["family"] for r in report["rows"] if r.get("errors") or r.get("check") != "PASS"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
