"""GPU prefill benchmark for the Taylor linear-attention kernels: the paper's kernel benchmark on
our card (docs/protocol.md says what of it is reproduced).

`python -m twice_inference.bench.kernels --suite all` checks every config of both kernel variants
("full": 273 features, "symmetric": 153) against the float64 reference, picks the fastest per
variant at N=32768 B=16, then sweeps length and batch against SDPA flash attention and the slow
PyTorch references. Needs a CUDA GPU; writes $OUT/kernel_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import torch

from twice_inference.ops.linear_attention.naive import based_linear_attention_naive
from twice_inference.ops.prefix_linear_attention.naive import prefix_linear_attention_naive

HEADS, D_FEATURE, D_VALUE = 16, 16, 64
LENGTHS = (2048, 4096, 8192, 16384, 32768)
BATCHES = (2, 4, 8, 16, 32, 64)
HEADLINE_N, HEADLINE_B = 32768, 16
Config = tuple[int, int, int, int, int]  # (block_c, block_dv, num_warps, num_stages, maxnreg)
FEATURES = ("full", "symmetric")
# Few candidates: every one costs Triton compiles. "full": the two best of call 3 (NOTES.md);
# "symmetric": chosen by offline_compile for 2-4 programs per SM with few spills.
CONFIGS: dict[str, list[Config]] = {
    # the measured best, and the same capped at 168 registers (3 programs per SM instead of 2)
    "full": [(64, 32, 4, 1, 0), (64, 32, 4, 1, 168)],
    # the two fastest of the first timed run (NOTES.md, v2)
    "symmetric": [(64, 32, 4, 1, 168), (64, 16, 4, 1, 168)],
}


def time_ms(fn: Callable[[], Any], min_reps: int = 10, target_ms: float = 200.0) -> float:
    """Median of >= min_reps CUDA-event timings after a warm-up run (which also compiles)."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    reps = max(min_reps, min(100, int(target_ms / max(start.elapsed_time(end), 1e-3))))
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def inputs(b: int, n: int, m: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random bf16 inputs, q/k scaled by 1/d as in the paper's profiling script."""
    g = torch.Generator(device="cuda").manual_seed(seed)

    def draw(length: int, dim: int, scale: float) -> torch.Tensor:
        return (torch.randn(b, HEADS, length, dim, device="cuda", generator=g) * scale).to(
            torch.bfloat16
        )

    t = {
        "q": draw(n, D_FEATURE, 1 / D_FEATURE),
        "k": draw(n, D_FEATURE, 1 / D_FEATURE),
        "v": draw(n, D_VALUE, 1.0),
    }
    if m:
        t["k_enc"], t["v_enc"] = draw(m, D_FEATURE, 1 / D_FEATURE), draw(m, D_VALUE, 1.0)
    return t


def flops_per_token(features: str, block_c: int = 64) -> tuple[int, int]:
    """(decoder token, encoder token) matrix FLOPs per head: state read + state write through the
    non-constant Taylor features (256 + 16 "full", 136 + 16 "symmetric"), the intra-chunk scores
    and mixing, and the tiny denominator dots."""
    quadratic = D_FEATURE * D_FEATURE if features == "full" else D_FEATURE * (D_FEATURE + 1) // 2
    feats = quadratic + D_FEATURE
    den = 2 * 2 * D_FEATURE * D_FEATURE
    decoder = 2 * 2 * feats * D_VALUE + 2 * block_c * (D_FEATURE + D_VALUE) + den
    encoder = 2 * feats * D_VALUE + den // 2
    return decoder, encoder


def bytes_per_token() -> tuple[int, int]:
    """(decoder, encoder) minimal bf16 bytes per head and token: q, k, v read and y written once;
    k_enc, v_enc read once."""
    return 2 * (2 * D_FEATURE + 2 * D_VALUE), 2 * (D_FEATURE + D_VALUE)


def measure_ceilings() -> dict[str, float]:
    x = torch.randn(2**30 // 2, device="cuda", dtype=torch.bfloat16)  # 1 GiB
    y = torch.empty_like(x)
    copy_ms = time_ms(lambda: y.copy_(x))
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    bm = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    mm_ms = time_ms(lambda: a @ bm)
    return {"copy_GBps": 2 * 2**30 / copy_ms / 1e6, "bf16_mm_TFLOPs": 2 * 8192**3 / mm_ms / 1e9}


def environment() -> dict[str, str]:
    import triton

    try:
        driver = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        driver = f"unknown ({err})"
    return {
        "gpu": torch.cuda.get_device_name(),
        "driver": driver,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": str(torch.version.cuda),
    }


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).norm() / ref.norm())


def check(features: str, config: Config) -> dict[str, float]:
    """Poison the output, run, require every element written and float64 agreement < 1e-2."""
    from twice_inference.kernels.based_triton import based_causal_attention
    from twice_inference.kernels.prefix_triton import prefix_linear_attention

    kw = _kwargs(config)
    result = {}
    for n, m, seed in ((4096, 0, 1), (3000, 0, 2), (4096, 2048, 3), (1000, 1500, 4)):
        t = inputs(2, n, m, seed=seed)
        out = torch.full_like(t["v"], float("nan"))
        if m:
            prefix_linear_attention(
                t["q"], t["k"], t["v"], t["k_enc"], t["v_enc"], features=features, out=out, **kw
            )
            ref = prefix_linear_attention_naive(t["q"], t["k"], t["v"], t["k_enc"], t["v_enc"])
        else:
            based_causal_attention(t["q"], t["k"], t["v"], features=features, out=out, **kw)
            ref = based_linear_attention_naive(t["q"], t["k"], t["v"])
        torch.cuda.synchronize()
        unwritten = int((~torch.isfinite(out)).sum())
        err = rel_err(out, ref)
        result[f"n{n}_m{m}"] = err
        if unwritten or not err < 1e-2:
            raise AssertionError(
                f"{features} {config} n={n} m={m}: rel err {err:.2e}, {unwritten} unwritten"
            )
        del t, out, ref
    return result


def row_fns(b: int, n: int, best: dict[str, dict[str, Config]]) -> dict[str, Callable[[], Any]]:
    """One closure per benchmark row; inputs are drawn once per (row, size). `best` maps
    variant -> {"based": config, "prefix": config}; a variant without a checked config is left
    out."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from twice_inference.kernels.based_triton import based_causal_attention
    from twice_inference.kernels.prefix_triton import prefix_linear_attention

    def sdpa() -> Callable[[], Any]:
        q, k, v = (
            torch.randn(b, HEADS, n, D_VALUE, device="cuda", dtype=torch.bfloat16) for _ in range(3)
        )

        def run() -> Any:
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

        return run

    def based(features: str, length: int) -> Callable[[], Callable[[], Any]]:
        kw = _kwargs(best[features]["based"])

        def make() -> Callable[[], Any]:
            t = inputs(b, length)
            out = torch.empty_like(t["v"])
            return lambda: based_causal_attention(
                t["q"], t["k"], t["v"], features=features, out=out, **kw
            )

        return make

    def prefix(features: str) -> Callable[[], Callable[[], Any]]:
        kw = _kwargs(best[features]["prefix"])

        def make() -> Callable[[], Any]:
            t = inputs(b, n, n // 2)
            out = torch.empty_like(t["v"])
            return lambda: prefix_linear_attention(
                t["q"], t["k"], t["v"], t["k_enc"], t["v_enc"], features=features, out=out, **kw
            )

        return make

    def based_torch() -> Callable[[], Any]:
        t = inputs(b, n)
        return lambda: based_linear_attention_naive(t["q"], t["k"], t["v"], dtype=torch.float32)

    def prefix_torch() -> Callable[[], Any]:
        t = inputs(b, n, n // 2)
        return lambda: prefix_linear_attention_naive(
            t["q"], t["k"], t["v"], t["k_enc"], t["v_enc"], dtype=torch.float32
        )

    rows: dict[str, Callable[[], Any]] = {"SDPA flash (N)": sdpa}
    for features in FEATURES:
        if features in best:
            rows |= {
                f"Based Triton {features} (N)": based(features, n),
                f"JRT-Prompt: Based Triton {features} (2N)": based(features, 2 * n),
                f"JRT-RNN: prefix Triton {features} (N + N/2)": prefix(features),
            }
    rows |= {
        "Based PyTorch fp32 (N)": based_torch,
        "JRT-RNN PyTorch fp32 (N + N/2)": prefix_torch,
    }
    return rows


def timed_row(make: Callable[[], Callable[[], Any]], slow_row: bool) -> float | str:
    try:
        fn = make()
        return time_ms(fn, target_ms=50.0 if slow_row else 200.0)
    except torch.cuda.OutOfMemoryError:
        return "OOM"
    finally:
        torch.cuda.empty_cache()


def slow_ref_fits(b: int, n: int) -> bool:
    """The fp32 quadratic references hold ~3 [B, H, N, N] fp32 buffers; skip (as OOM) beyond
    the card rather than spend device time on allocation failures deep inside."""
    free, _ = torch.cuda.mem_get_info()
    return 3 * b * HEADS * n * n * 4 < free


def sweep(
    points: list[tuple[int, int]], best: dict[str, dict[str, Config]]
) -> dict[str, dict[str, float | str]]:
    table: dict[str, dict[str, float | str]] = {}
    for b, n in points:
        for name, make in row_fns(b, n, best).items():
            slow_row = "PyTorch" in name
            key = f"b{b}_n{n}"
            if slow_row and not slow_ref_fits(b, n):
                table.setdefault(name, {})[key] = "OOM"
                continue
            table.setdefault(name, {})[key] = timed_row(make, slow_row)
            print(f"  {name:46s} B={b:3d} N={n:6d}: {table[name][key]}", flush=True)
    return table


def markdown(table: dict[str, dict[str, float | str]], keys: list[str], labels: list[str]) -> str:
    def cell(x: float | str) -> str:
        return x if isinstance(x, str) else f"{x:.2f}"

    lines = ["| Implementation | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(cell(row.get(k, "-")) for k in keys) + " |")
    sdpa = table.get("SDPA flash (N)", {})
    for name, row in table.items():
        if name == "SDPA flash (N)":
            continue
        ratios = []
        for k in keys:
            a, r = sdpa.get(k), row.get(k)
            ratios.append(f"{a / r:.1f}x" if isinstance(a, float) and isinstance(r, float) else "-")
        lines.append(f"| speedup vs SDPA: {name} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def _kwargs(config: Config) -> dict[str, int]:
    from twice_inference.kernels.based_triton import CONFIG_KEYS

    return dict(zip(CONFIG_KEYS, config, strict=True))


def tune_configs(timed: bool) -> dict[str, dict[str, dict[str, Any]]]:
    """Check every config of both variants against float64; if timed, time Based and prefix at
    the headline size. Returns variant -> str(config) -> entry."""
    from twice_inference.kernels.based_triton import based_causal_attention
    from twice_inference.kernels.prefix_triton import prefix_linear_attention

    tb = inputs(HEADLINE_B, HEADLINE_N)
    tp = inputs(HEADLINE_B, HEADLINE_N, HEADLINE_N // 2)
    out = torch.empty_like(tb["v"])
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for features in FEATURES:
        entries[features] = {}
        for config in CONFIGS[features]:
            kw = _kwargs(config) | {"features": features}
            entry: dict[str, Any] = {}
            try:
                entry["errors"] = check(features, config)
                if timed:
                    entry["based_ms"] = time_ms(
                        lambda kw=kw: based_causal_attention(
                            tb["q"], tb["k"], tb["v"], out=out, **kw
                        )
                    )
                    entry["prefix_ms"] = time_ms(
                        lambda kw=kw: prefix_linear_attention(
                            tp["q"], tp["k"], tp["v"], tp["k_enc"], tp["v_enc"], out=out, **kw
                        )
                    )
            except Exception as err:  # a config may fail to compile (registers, smem) or check
                entry["failed"] = f"{type(err).__name__}: {str(err)[:300]}"
            entries[features][str(config)] = entry
            print(f"{features} {config}: {entry}", flush=True)
    return entries


def pick_best(configs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Config]]:
    """Fastest checked config per variant and kernel (Based, prefix) at the headline size."""
    best: dict[str, dict[str, Config]] = {}
    for features, entries in configs.items():
        timed = {c: e for c, e in entries.items() if "based_ms" in e}
        if not timed:
            continue
        best[features] = {
            kernel: tuple(
                int(x)
                for x in min(timed, key=lambda c: timed[c][f"{kernel}_ms"]).strip("()").split(",")
            )
            for kernel in ("based", "prefix")
        }
    return best


def roofline(
    length: dict[str, dict[str, float | str]],
    best: dict[str, dict[str, Config]],
    ceil: dict[str, float],
) -> dict[str, dict[str, float]]:
    """Achieved FLOP/s and bytes/s at the headline size vs the card's measured ceilings."""
    dec_b, enc_b = bytes_per_token()
    tokens = HEADLINE_B * HEADS * HEADLINE_N
    work = {
        "SDPA flash (N)": (
            4 * HEADLINE_B * HEADS * HEADLINE_N**2 * D_VALUE / 2,
            4 * tokens * D_VALUE * 2,
        )
    }
    for features, cfg in best.items():
        dec_f, _ = flops_per_token(features, cfg["based"][0])
        dec_f_prefix, enc_f = flops_per_token(features, cfg["prefix"][0])
        work |= {
            f"Based Triton {features} (N)": (tokens * dec_f, tokens * dec_b),
            f"JRT-Prompt: Based Triton {features} (2N)": (2 * tokens * dec_f, 2 * tokens * dec_b),
            f"JRT-RNN: prefix Triton {features} (N + N/2)": (
                tokens * dec_f_prefix + tokens // 2 * enc_f,
                tokens * dec_b + tokens // 2 * enc_b,
            ),
        }
    print(
        f"\nAt N={HEADLINE_N} B={HEADLINE_B}: achieved vs ceilings "
        f"({ceil['bf16_mm_TFLOPs']:.0f} TFLOP/s, {ceil['copy_GBps']:.0f} GB/s)\n"
    )
    print(
        "| Kernel | ms | GFLOP | GB | TFLOP/s | GB/s | floor ms | floor / measured |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    result = {}
    for name, (flop, nbytes) in work.items():
        ms = length.get(name, {}).get(f"b{HEADLINE_B}_n{HEADLINE_N}")
        if not isinstance(ms, float):
            continue
        floor = max(flop / ceil["bf16_mm_TFLOPs"] / 1e9, nbytes / ceil["copy_GBps"] / 1e6)
        result[name] = {"ms": ms, "flop": flop, "bytes": nbytes, "floor_ms": floor}
        print(
            f"| {name} | {ms:.2f} | {flop / 1e9:.0f} | {nbytes / 1e9:.2f} | "
            f"{flop / ms / 1e9:.0f} | {nbytes / ms / 1e6:.0f} | {floor:.2f} | {floor / ms:.2f} |"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", choices=["all", "check", "tune"], default="all")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench needs a CUDA GPU", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"env": environment()}
    print(json.dumps(results["env"]), flush=True)
    results["ceilings"] = ceil = measure_ceilings()
    print(
        f"ceilings: copy {ceil['copy_GBps']:.0f} GB/s, "
        f"bf16 matmul {ceil['bf16_mm_TFLOPs']:.0f} TFLOP/s",
        flush=True,
    )

    results["configs"] = tune_configs(timed=args.suite != "check")
    torch.cuda.empty_cache()

    best = pick_best(results["configs"])
    if args.suite == "all" and best:
        results["best_configs"] = best
        print(f"fastest configs (block_c, block_dv, warps, stages, maxnreg): {best}", flush=True)
        length = sweep([(16, n) for n in LENGTHS], best)
        batch = sweep([(b, 16384) for b in BATCHES], best)
        results["length_sweep_b16"], results["batch_sweep_n16384"] = length, batch
        print(f"\n{json.dumps(results['env'])}\nconfigs: {best}")
        print("\nLatency (ms), batch 16, 16 heads, d=16, Dv=64, bf16\n")
        print(markdown(length, [f"b16_n{n}" for n in LENGTHS], [str(n) for n in LENGTHS]))
        print("\nLatency (ms), length 16384\n")
        print(markdown(batch, [f"b{b}_n16384" for b in BATCHES], [str(b) for b in BATCHES]))
        results["roofline"] = roofline(length, best, ceil)
    out_dir = os.environ.get("OUT")
    if out_dir:
        with open(os.path.join(out_dir, "kernel_bench.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
