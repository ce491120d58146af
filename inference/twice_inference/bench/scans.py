"""The SSM scans on a GPU, in one process: each fast path checked against its float64 reference,
then timed against the chunked PyTorch form it replaces, at the paper models' shapes.

    python -m twice_inference.bench.scans [--batch 32] [--length 2000]

- Mamba-1 selective scan: our Triton kernel (several launch configs) vs ``selective_scan_chunked``,
  at mamba-130m (Di 1536) and mamba-1.4b / -1b (Di 4096) channels, N = 16.
- Mamba-2 SSD: fla's ``chunk_simple_gla`` through ``ops.ssd`` vs ``ssd_chunked`` (chunk 256), at
  mamba2-1.3b (64 heads x 64, N = 128).
- GLA: fla's ``chunk_gla`` through ``ops.gla`` vs ``gla_chunked``, at gla-1.3b (4 heads, K 256,
  V 512).
Inputs float32 as the models give them; B and C as strided slices of one projection, as there.
The PyTorch forms take seconds per call at these sizes, so they are timed once (after a warm-up
at a short length); the fast paths take the median of 5 after 2 warm-ups. Checks: the whole
output and final state against float64, rel err = max |a - e| / max |e|.

Needs a CUDA GPU; writes $OUT/scan_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..ops import gla as gla_op
from ..ops import kernel_mode
from ..ops import selective_scan as scan_op
from ..ops import ssd as ssd_op
from .model_common import environment, log, release_memory, time_once, write_to_out

SCAN_CONFIGS = ((32, 1), (64, 1), (64, 2), (128, 2), (128, 4), (256, 4))
# float32 data, float32 (Triton scan) or tf32 (fla) arithmetic over a 2000-step recurrence
TOLERANCE = {"selective_scan": 1e-4, "ssd": 5e-3, "gla": 5e-3}


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    denom = expected.abs().max().clamp(min=1e-30)
    return float((actual.double() - expected).abs().max() / denom)


def timed(fn: Callable[[], Any], runs: int = 5) -> float:
    for _ in range(2):
        fn()
    return statistics.median(time_once(fn, "cuda") for _ in range(runs))


def scan_inputs(b: int, t: int, d: int, n: int) -> tuple[torch.Tensor, ...]:
    x = torch.randn(b, t, d, device="cuda")
    dt = F.softplus(torch.randn(b, t, d, device="cuda") - 2.0)  # mamba's dt range, ~0.1
    A = -torch.exp(torch.log(torch.arange(1, n + 1, device="cuda").float())).repeat(d, 1)
    B, C = torch.randn(b, t, 2 * n, device="cuda").split([n, n], dim=-1)
    return x, dt, A, B, C, torch.zeros(b, d, n, device="cuda")


def check(name: str, got: tuple[torch.Tensor, ...], ref: tuple[torch.Tensor, ...]) -> dict:
    errs = [rel_err(g, r) for g, r in zip(got, ref, strict=True)]
    ok = all(e < TOLERANCE[name] for e in errs) and all(bool(g.isfinite().all()) for g in got)
    return {"y_rel_err": errs[0], "state_rel_err": errs[1], "ok": ok}


def _first(inputs: tuple[torch.Tensor, ...], t: int, length: int) -> tuple[torch.Tensor, ...]:
    """The inputs cut to their first ``length`` steps (the time axis is dim 1 of the [B, T, ...]
    tensors; A and the state have none)."""
    return tuple(u[:, :length] if u.dim() >= 3 and u.shape[1] == t else u for u in inputs)


def _scan_row(label: str, b: int, t: int, d: int) -> dict[str, Any]:
    from ..kernels import selective_scan_triton as kernel

    inputs = scan_inputs(b, t, d, 16)
    ref = scan_op.selective_scan_naive(*inputs)
    row: dict[str, Any] = {"op": "selective_scan", "shape": label, "B": b, "T": t, "Di": d}
    configs = {}
    for block, warps in SCAN_CONFIGS:

        def run(block: int = block, warps: int = warps) -> tuple[torch.Tensor, torch.Tensor]:
            return kernel.selective_scan(*inputs, block_d=block, num_warps=warps)

        configs[f"{block}x{warps}"] = {
            **check("selective_scan", run(), ref),
            "ms": 1e3 * timed(run),
        }
    del ref
    row["triton"] = configs
    with kernel_mode.use_taylor_kernel_mode("auto"):
        row["dispatched_ms"] = 1e3 * timed(lambda: scan_op.selective_scan(*inputs))
    # the PyTorch form it replaces: once at 512 tokens (after a short warm-up), scaled to T, as
    # it is linear in T (a chain of equal chunks)
    scan_op.selective_scan_chunked(*_first(inputs, t, 64))
    short = _first(inputs, t, 512)
    row["torch_ms_at_512"] = 1e3 * time_once(lambda: scan_op.selective_scan_chunked(*short), "cuda")
    row["torch_ms_scaled"] = row["torch_ms_at_512"] * t / 512
    best = min(configs, key=lambda k: configs[k]["ms"])
    row["best_config"], row["speedup"] = best, row["torch_ms_scaled"] / configs[best]["ms"]
    return row


def bench_selective_scan(b: int, t: int) -> list[dict[str, Any]]:
    rows = []
    for label, d in (("mamba-130m", 1536), ("mamba-1.4b", 4096)):
        rows.append(_scan_row(label, b, t, d))
        log(json.dumps(rows[-1]))
        release_memory("cuda")
    return rows


def bench_ssd(b: int, t: int) -> dict[str, Any]:
    h, p, n = 64, 64, 128
    x = torch.randn(b, t, h, p, device="cuda")
    dt = F.softplus(torch.randn(b, t, h, device="cuda") - 2.0)
    A = -torch.rand(h, device="cuda") * 4 - 0.5
    B, C = torch.randn(b, t, 2 * n, device="cuda").split([n, n], dim=-1)
    B, C = (u[:, :, None, :].expand(b, t, h, n) for u in (B, C))  # one group, as mamba2-*
    h0 = torch.randn(b, h, p, n, device="cuda") * 0.1
    row: dict[str, Any] = {"op": "ssd", "shape": "mamba2-1.3b", "B": b, "T": t}
    with kernel_mode.use_taylor_kernel_mode("auto"):
        fast = lambda: ssd_op.ssd(x, dt, A, B, C, h0, 256)  # noqa: E731
        row.update(check("ssd", fast(), ssd_op.ssd_naive(x, dt, A, B, C, h0)))
        row["fla_ms"] = 1e3 * timed(fast)
    ssd_op.ssd_chunked(x[:, :256], dt[:, :256], A, B[:, :256], C[:, :256], h0, 256)
    row["torch_ms"] = 1e3 * time_once(lambda: ssd_op.ssd_chunked(x, dt, A, B, C, h0, 256), "cuda")
    row["speedup"] = row["torch_ms"] / row["fla_ms"]
    log(json.dumps(row))
    return row


def bench_gla(b: int, t: int) -> dict[str, Any]:
    h, k, v = 4, 256, 512
    q, kk = (torch.randn(b, t, h, k, device="cuda") for _ in range(2))
    vv = torch.randn(b, t, h, v, device="cuda")
    g = F.logsigmoid(torch.randn(b, t, h, k, device="cuda")) / 16  # the model's normaliser
    S0 = torch.randn(b, h, k, v, device="cuda") * 0.1
    row: dict[str, Any] = {"op": "gla", "shape": "gla-1.3b", "B": b, "T": t}
    started = time.perf_counter()

    def progress(what: str) -> None:
        # fla's first chunk_gla call compiles and autotunes for minutes: say where the time goes
        log(f"gla: {what} at {time.perf_counter() - started:.1f} s")

    with kernel_mode.use_taylor_kernel_mode("auto"):
        # a 64-token call first: its time is compilation and autotuning, not the kernel's
        progress("first fla call, B = 1, T = 64 (Triton compile and autotune)")
        tiny = tuple(u[:1] for u in _first((q, kk, vv, g), t, 64))
        row["first_call_s"] = time_once(lambda: gla_op.gla(*tiny, S0[:1]), "cuda")
        progress("full-size fla call")
        fast = lambda: gla_op.gla(q, kk, vv, g, S0)  # noqa: E731
        got = fast()
        progress("float64 reference")
        row.update(check("gla", got, gla_op.gla_naive(q, kk, vv, g, S0)))
        progress(f"checked, y {row['y_rel_err']:.1e}, state {row['state_rel_err']:.1e}; timing")
        row["fla_ms"] = 1e3 * timed(fast)
    gla_op.gla_chunked(*_first((q, kk, vv, g), t, 64), S0)
    short = _first((q, kk, vv, g), t, 512)
    row["torch_ms_at_512"] = 1e3 * time_once(lambda: gla_op.gla_chunked(*short, S0), "cuda")
    row["torch_ms_scaled"] = row["torch_ms_at_512"] * t / 512
    row["speedup"] = row["torch_ms_scaled"] / row["fla_ms"]
    log(json.dumps(row))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=2000)
    parser.add_argument(
        "--ops", default="selective_scan,ssd,gla", help="comma list of the ops to check and time"
    )
    args = parser.parse_args(argv)
    benches = {"selective_scan": bench_selective_scan, "ssd": bench_ssd, "gla": bench_gla}
    chosen = [op for op in args.ops.split(",") if op]
    unknown = sorted(set(chosen) - set(benches))
    if unknown:
        print(f"--ops: unknown {unknown}; known: {sorted(benches)}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("bench.scans needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    report: dict[str, Any] = {"env": environment("cuda"), "rows": []}
    log(json.dumps(report["env"]))
    failed = False
    for bench in (benches[op] for op in chosen):
        try:
            out = bench(args.batch, args.length)
            rows = out if isinstance(out, list) else [out]
        except Exception as error:  # noqa: BLE001 - one op's failure is reported, the rest run
            rows = [{"op": bench.__name__, "error": f"{type(error).__name__}: {error}"[:500]}]
        report["rows"].extend(rows)
        release_memory("cuda")
    log(f"\nB = {args.batch}, T = {args.length}, float32 inputs\n")
    log("| op | shape | fast path | fast ms | PyTorch ms | speedup | rel err y / state |")
    log("|---|---|---|---|---|---|---|")
    for row in report["rows"]:
        if "error" in row:
            failed = True
            log(f"| {row['op']} | error: {row['error']} |")
            continue
        if row["op"] == "selective_scan":
            best = row["triton"][row["best_config"]]
            failed |= not all(c["ok"] for c in row["triton"].values())
            fast = f"Triton {row['best_config']}"
            ms, torch_ms, err = best["ms"], row["torch_ms_scaled"], best
        else:
            failed |= not row["ok"]
            fast, ms, err = "fla", row["fla_ms"], row
            torch_ms = row.get("torch_ms", row.get("torch_ms_scaled"))
        log(
            f"| {row['op']} | {row['shape']} | {fast} | {ms:.2f} | {torch_ms:.1f} | "
            f"{row['speedup']:.0f}x | {err['y_rel_err']:.1e} / {err['state_rel_err']:.1e} |"
        )
    write_to_out("scan_bench.json", report)
    log(f"\nchecks: {'FAILED' if failed else 'all passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
