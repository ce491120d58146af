"""GPU prefill benchmark for the Taylor linear-attention kernels: the paper's kernel benchmark on
our card (docs/protocol.md says what of it is reproduced), in one process and one command:

    python -m twice_inference.bench.kernels --suite all

prints, at the paper's two sweeps (length at B = 16, batch at N = 16384; H = 16, d = 16,
Dv = 64, bf16), SDPA flash attention, our kernels (Based at N, JRT-Prompt = Based at 2N,
JRT-RNN = prefix at N + N/2), each as the ops dispatch it, as the CUDA kernel and as the Triton
kernel (sequence-parallel where its cost model picks it), and flash-linear-attention's Based
kernels (``fused_chunk_based``, ``parallel_based``) on the same inputs, with ratios to SDPA, the
versions, the card's measured ceilings and, at every benchmarked shape, our outputs against a
float64 reference (batch rows 0 and B - 1); plus the CUDA kernel on ragged lengths, two value
slices, the recurrent (decode) form and padded inputs (``small_checks``), the ops' own dispatch
(``op_checks``), the decayed kernel of based-360m-30b (``decay_checks``), and the CUDA kernel's
two register budgets (``variants``). ``--suite check`` runs only the correctness part, ``--suite
quick`` the small checks and budgets, ``--suite decay`` the decayed kernel's checks and timings
alone; ``--suite profile`` launches each of our kernels once at the headline and a small-batch
shape (for Nsight Compute). Needs a CUDA GPU; writes $OUT/kernel_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch

from ..engine.throughput import environment_versions
from ..ops.feature_map import taylor_feature_map
from ..ops.linear_attention.chunk import causal_linear_attention_parts
from .decay_checks import decay_checks, decay_timings
from .model_common import write_to_out

HEADS, D_FEATURE, D_VALUE = 16, 16, 64
LENGTHS = (2048, 4096, 8192, 16384, 32768)
BATCHES = (2, 4, 8, 16, 32, 64)
HEADLINE_N, HEADLINE_B = 32768, 16
SDPA = "SDPA flash (N)"
# Speed-up over SDPA flash that our kernels aim for at the headline (N = 32768, B = 16): past the
# paper's ThunderKittens kernels on an H100 (11.9x and 19.2x).
GOALS = {"JRT-Prompt ours (2N)": 15.0, "JRT-RNN ours (N + N/2)": 24.0}
MAX_REL_ERR = 1e-2


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


def markdown(table: dict[str, dict[str, float | str]], keys: list[str], labels: list[str]) -> str:
    def cell(x: float | str) -> str:
        return x if isinstance(x, str) else f"{x:.2f}"

    lines = ["| Implementation | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(cell(row.get(k, "-")) for k in keys) + " |")
    sdpa = table.get(SDPA, {})
    for name, row in table.items():
        if name == SDPA:
            continue
        ratios = []
        for k in keys:
            a, r = sdpa.get(k), row.get(k)
            ratios.append(f"{a / r:.1f}x" if isinstance(a, float) and isinstance(r, float) else "-")
        lines.append(f"| speedup vs SDPA: {name} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def environment() -> dict[str, str]:
    versions = environment_versions(torch.device("cuda"))
    try:
        from importlib.metadata import version

        versions["flash-linear-attention"] = version("flash-linear-attention")
        versions["fla-core"] = version("fla-core")
    except Exception as err:  # noqa: BLE001 - the fla rows are optional
        versions["flash-linear-attention"] = f"not importable ({type(err).__name__})"
    return versions


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).norm() / ref.norm())


def reference(t: dict[str, torch.Tensor], rows: list[int]) -> torch.Tensor:
    """float64 output for batch ``rows``: the chunked linear form on float64 Taylor features
    (linear memory, so it reaches the benchmark's lengths; tests/test_models_linear.py holds it to
    the quadratic naive reference), plus the encoder's state for prefix inputs."""
    q, k, v = (t[x][rows].double() for x in ("q", "k", "v"))
    phi_q = taylor_feature_map(q)
    num, den = causal_linear_attention_parts(phi_q, taylor_feature_map(k), v)
    if "k_enc" in t:
        phi_ke = taylor_feature_map(t["k_enc"][rows].double())
        num = num + phi_q @ (phi_ke.transpose(-1, -2) @ t["v_enc"][rows].double())
        den = den + (phi_q @ phi_ke.sum(-2)[..., None])[..., 0]
    return num / den[..., None]


def kernels() -> dict[str, Callable[..., torch.Tensor]]:
    """Kernel name -> fn(inputs dict, out) for our kernels: as the ops dispatch them
    (``taylor_prefill``: CUDA or Triton per shape), the CUDA kernel alone (its two register
    budgets) and the Triton kernel alone (sequence-parallel where its cost model picks it)."""
    from ..kernels.based_triton import based_causal_attention
    from ..kernels.prefix_triton import prefix_linear_attention
    from ..kernels.taylor_cuda import taylor_prefill
    from ..kernels.taylor_prefill import based_prefill, prefix_prefill

    def encoder(t: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return t.get("k_enc"), t.get("v_enc")

    def dispatched(t: dict[str, torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        if "k_enc" not in t:
            return based_prefill(t["q"], t["k"], t["v"], out=out)
        return prefix_prefill(t["q"], t["k"], t["v"], t["k_enc"], t["v_enc"], out=out)

    def triton(t: dict[str, torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        if "k_enc" not in t:
            return based_causal_attention(t["q"], t["k"], t["v"], out=out)
        return prefix_linear_attention(t["q"], t["k"], t["v"], t["k_enc"], t["v_enc"], out=out)

    def cuda(ctas: int) -> Callable[..., torch.Tensor]:
        return lambda t, out: taylor_prefill(
            t["q"], t["k"], t["v"], *encoder(t), ctas_per_sm=ctas, out=out
        )

    return {
        "dispatched": dispatched,
        "cuda": cuda(0),
        "cuda 1cta": cuda(1),
        "cuda 2cta": cuda(2),
        "triton": triton,
    }


def fla_kernels() -> dict[str, Callable[..., torch.Tensor]]:
    """flash-linear-attention's Based kernels on our [B, H, N, d] inputs (they take [B, N, H, d]:
    a transposed view, which they turn back into our layout without a copy). Their default scale
    d^-1/2 on q.k is ours."""
    try:
        from fla.ops.based import fused_chunk_based, parallel_based
    except Exception as err:  # noqa: BLE001 - reported, the rest of the benchmark still runs
        print(f"flash-linear-attention not importable: {type(err).__name__}: {err}", flush=True)
        return {}

    def wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        return lambda t, out: fn(*(t[x].transpose(1, 2) for x in ("q", "k", "v"))).transpose(1, 2)

    return {
        "fla fused_chunk_based": wrap(fused_chunk_based),
        "fla parallel_based": wrap(parallel_based),
    }


def row_plan(b: int, n: int) -> list[tuple[str, str, int, int]]:
    """(row label, kernel name, decoder length, encoder length) per benchmark row at (B, N)."""
    ours = []
    for what, length, m in (("Based", n, 0), ("JRT-Prompt", 2 * n, 0), ("JRT-RNN", n, n // 2)):
        span = {"Based": "N", "JRT-Prompt": "2N", "JRT-RNN": "N + N/2"}[what]
        ours += [
            (f"{what} ours ({span})", "dispatched", length, m),
            (f"{what} ours CUDA ({span})", "cuda", length, m),
            (f"{what} ours Triton ({span})", "triton", length, m),
        ]
    fla = []
    for name in ("fla fused_chunk_based", "fla parallel_based"):
        fla += [(f"Based {name} (N)", name, n, 0), (f"JRT-Prompt {name} (2N)", name, 2 * n, 0)]
    return ours + fla


def sdpa_fn(b: int, n: int) -> Callable[[], Any]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (
        torch.randn(b, HEADS, n, D_VALUE, device="cuda", dtype=torch.bfloat16) for _ in range(3)
    )

    def run() -> Any:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    return run


def sweep(points: list[tuple[int, int]], check: bool, timed: bool) -> dict[str, Any]:
    """Times (and checks) every row at every point. Returns {"ms": {row: {point: ms}},
    "errors": {row: {point: rel err}}}; a failed check raises after the sweep is recorded."""
    fns = kernels() | fla_kernels()
    table: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, float]] = {}
    failures = []
    for b, n in points:
        key = f"b{b}_n{n}"
        if timed:
            table.setdefault(SDPA, {})[key] = guarded(lambda b=b, n=n: time_ms(sdpa_fn(b, n)))
            print(f"  {SDPA:40s} B={b:3d} N={n:6d}: {table[SDPA][key]}", flush=True)
        for label, name, length, m in row_plan(b, n):
            if name not in fns:
                continue
            t = inputs(b, length, m, seed=length + m + b)
            out = torch.empty_like(t["v"])
            fn = fns[name]
            if check:
                result = fn(t, torch.full_like(t["v"], float("nan")))
                rows = [0, b - 1] if b > 1 else [0]
                unwritten = int((~torch.isfinite(result[rows])).sum())
                err = rel_err(result[rows], reference(t, rows)) if not unwritten else float("nan")
                errors.setdefault(label, {})[key] = err
                ours = "ours" in label
                if ours and (unwritten or not err < MAX_REL_ERR):
                    failures.append(f"{label} {key}: rel err {err:.2e}, {unwritten} unwritten")
            if timed:
                table.setdefault(label, {})[key] = guarded(
                    lambda fn=fn, t=t, out=out: time_ms(lambda: fn(t, out))
                )
            shown = table.get(label, {}).get(key, "-")
            err_text = f"{errors[label][key]:.1e}" if label in errors else "-"
            print(f"  {label:40s} B={b:3d} N={n:6d}: {shown} ms, rel err {err_text}", flush=True)
            del t, out
            torch.cuda.empty_cache()
    return {"ms": table, "errors": errors, "failures": failures}


def guarded(fn: Callable[[], float]) -> float | str:
    try:
        return fn()
    except torch.cuda.OutOfMemoryError:
        return "OOM"
    finally:
        torch.cuda.empty_cache()


def state_cost(b: int = 16, n: int = 16384) -> dict[str, float]:
    """The sequence-parallel cost model's STATE_COST on this card: the state-sum kernel over a
    whole sequence against the chain kernel over the same, both with the GPU full (B = 16)."""
    from ..kernels.taylor_state import segment_states

    t = inputs(b, n)
    out = torch.empty_like(t["v"])
    from ..kernels.based_triton import based_causal_attention

    chain_ms = time_ms(lambda: based_causal_attention(t["q"], t["k"], t["v"], segments=1, out=out))
    state_ms = time_ms(
        lambda: segment_states(t["k"], t["v"], n, 1, block_c=64, block_dv=32, num_warps=4)
    )
    return {"chain_ms": chain_ms, "state_ms": state_ms, "state_cost": state_ms / chain_ms}


def goals(length: dict[str, dict[str, Any]]) -> list[str]:
    key = f"b{HEADLINE_B}_n{HEADLINE_N}"
    sdpa = length.get(SDPA, {}).get(key)
    lines = []
    for goal, ratio in GOALS.items():
        ms = length.get(goal, {}).get(key)
        if isinstance(sdpa, float) and isinstance(ms, float):
            target = sdpa / ratio
            verdict = "met" if ms <= target else f"missed by {ms / target:.2f}x"
            lines.append(
                f"{goal} at N={HEADLINE_N} B={HEADLINE_B}: {ms:.2f} ms = {sdpa / ms:.1f}x SDPA "
                f"(goal {ratio:.0f}x, <= {target:.2f} ms): {verdict}"
            )
    return lines


def draw(g: torch.Generator, shape: tuple[int, ...], scale: float) -> torch.Tensor:
    return (torch.randn(*shape, device="cuda", generator=g) * scale).to(torch.bfloat16)


def small_checks() -> list[str]:
    """The CUDA kernel where the benchmark shapes do not reach: ragged chunk tails (decoder and
    encoder), two value slices (Dv = 128), one token; the recurrent form (the decode state a
    prompt leaves, advanced one step by ``linear_attention_step``, gives the kernel's output at
    that token); padded inputs (the ops fall back to PyTorch, the kernel has no mask). Returns
    failures, printing every figure."""
    from ..kernels.taylor_cuda import load, taylor_prefill
    from ..ops import linear_attention as la
    from ..ops.kernel_mode import use_taylor_kernel_mode

    if load() is None:
        return ["CUDA Taylor kernel did not build or load"]
    failures = []
    for b, n, m, dv in (
        (2, 1000, 0, 64),
        (1, 17, 0, 128),
        (3, 150, 70, 64),
        (2, 1, 0, 64),
        (2, 64, 1500, 128),
        (1, 4096, 2048, 64),
        (2, 3000, 0, 64),
    ):
        g = torch.Generator(device="cuda").manual_seed(n + m)
        t = {
            "q": draw(g, (b, 4, n, D_FEATURE), 0.5),
            "k": draw(g, (b, 4, n, D_FEATURE), 0.5),
            "v": draw(g, (b, 4, n, dv), 1.0),
        }
        if m:
            t["k_enc"] = draw(g, (b, 4, m, D_FEATURE), 0.5)
            t["v_enc"] = draw(g, (b, 4, m, dv), 1.0)
        for ctas in (1, 2):
            out = torch.full_like(t["v"], float("nan"))
            y = taylor_prefill(
                t["q"], t["k"], t["v"], t.get("k_enc"), t.get("v_enc"), ctas_per_sm=ctas, out=out
            )
            rows = list(range(b))
            unwritten = int((~torch.isfinite(y)).sum())
            err = rel_err(y, reference(t, rows)) if not unwritten else float("nan")
            print(
                f"  CUDA {ctas} CTA/SM B={b} N={n} M={m} Dv={dv}: rel err {err:.2e}, "
                f"{unwritten} unwritten",
                flush=True,
            )
            if unwritten or not err < MAX_REL_ERR:
                failures.append(f"CUDA B={b} N={n} M={m} Dv={dv} ctas={ctas}: {err:.2e}")
    # Recurrent form at the last token of a ragged prompt.
    n, dv = 777, 64
    g = torch.Generator(device="cuda").manual_seed(1)
    q, k = (
        torch.randn(2, 4, n, D_FEATURE, device="cuda", generator=g).mul(0.5).bfloat16()
        for _ in range(2)
    )
    v = torch.randn(2, 4, n, dv, device="cuda", generator=g).bfloat16()
    y = taylor_prefill(q, k, v)
    state = la.linear_attention_state(k[:, :, :-1], v[:, :, :-1], None)
    step, _ = la.linear_attention_step(q[:, :, -1], k[:, :, -1], v[:, :, -1], state, 0.0)
    err = rel_err(y[:, :, -1], step.double())
    print(f"  CUDA vs recurrent step at token {n}: rel err {err:.2e}", flush=True)
    if not err < MAX_REL_ERR:
        failures.append(f"CUDA vs recurrent step: {err:.2e}")
    # Padded inputs through the op: the kernel must not take them.
    mask = torch.ones(2, n, dtype=torch.bool, device="cuda")
    mask[1, :100] = False
    with use_taylor_kernel_mode("auto"):
        got = la.based_linear_attention(q, k, v, mask, 1e-12)
    want = la.based_linear_attention_torch(q, k, v, mask, 1e-12)
    err = rel_err(got[1, :, 100:], want[1, :, 100:].double())
    print(f"  padded input through the op: rel err {err:.2e} (PyTorch path)", flush=True)
    if not err < 1e-6:
        failures.append(f"padded op: {err:.2e}")
    return failures


def op_checks() -> list[str]:
    """The ops' own dispatch on the GPU (Triton at B = 2, CUDA from B = 4; H = 16, N = 4096,
    Dv = 64): ``based_linear_attention`` and ``prefix_linear_attention`` (encoder = the first
    M = 2048 columns) against the float64 reference. Returns failures."""
    from ..kernels.taylor_prefill import use_cuda
    from ..ops.linear_attention import based_linear_attention
    from ..ops.prefix_linear_attention import prefix_linear_attention

    failures = []
    n, m = 4096, 2048
    for b in (2, 4, 16):
        t = inputs(b, n, m)
        rows = [0, b - 1]
        based = {x: t[x] for x in ("q", "k", "v")}
        y = based_linear_attention(t["q"], t["k"], t["v"], None, 1e-12)
        err_based = rel_err(y[rows], reference(based, rows))
        enc = torch.zeros(b, n, dtype=torch.bool, device="cuda")
        enc[:, :m] = True
        k_enc, v_enc = (torch.nn.functional.pad(t[x], (0, 0, 0, n - m)) for x in ("k_enc", "v_enc"))
        y = prefix_linear_attention(t["q"], t["k"], t["v"], k_enc, v_enc, None, enc, 1e-12)
        err_prefix = rel_err(y[rows], reference(t, rows))
        print(
            f"  ops B={b} (CUDA: {use_cuda(t['v'])}): based {err_based:.2e}, "
            f"prefix {err_prefix:.2e}",
            flush=True,
        )
        if not max(err_based, err_prefix) < MAX_REL_ERR:
            failures.append(f"ops B={b}: based {err_based:.2e}, prefix {err_prefix:.2e}")
    return failures


def variants() -> dict[str, dict[str, float | str]]:
    """The CUDA kernel's two register budgets (2 CTAs/SM at 128 registers, 1 CTA/SM free) and
    the Triton kernel at the headline and the small batches, for Based at 2N and the prefix."""
    fns = kernels()
    table: dict[str, dict[str, float | str]] = {}
    for b, n in ((HEADLINE_B, HEADLINE_N), (8, 16384), (4, 16384), (2, 16384)):
        for what, length, m in (("JRT-Prompt (2N)", 2 * n, 0), ("JRT-RNN (N + N/2)", n, n // 2)):
            t = inputs(b, length, m)
            out = torch.empty_like(t["v"])
            for name in ("cuda 2cta", "cuda 1cta", "triton"):
                fn = fns[name]
                ms = guarded(lambda fn=fn, t=t, out=out: time_ms(lambda: fn(t, out)))
                table.setdefault(f"{what} {name}", {})[f"b{b}_n{n}"] = ms
                print(f"  variant {what} {name:10s} B={b} N={n}: {ms} ms", flush=True)
            del t, out
            torch.cuda.empty_cache()
    return table


def profile() -> None:
    """One launch of each of our kernels at the headline and at B = 2, N = 16384, for ncu."""
    fns = kernels()
    for b, n in ((HEADLINE_B, HEADLINE_N), (2, 16384)):
        for m in (0, n // 2):
            t = inputs(b, n, m)
            for name in ("cuda", "triton"):
                fns[name](t, torch.empty_like(t["v"]))
    torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--suite", choices=["all", "check", "quick", "profile", "decay"], default="all"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench needs a CUDA GPU", file=sys.stderr)
        return 2
    if args.suite == "profile":
        profile()
        return 0
    results: dict[str, Any] = {"env": environment()}
    print(json.dumps(results["env"]), flush=True)
    timed = args.suite == "all"
    if args.suite == "decay":  # the decayed kernel alone: its checks and the op's timings
        failures = decay_checks()
        results["decay_failures"] = failures
        results["decay_ms"] = decay_timings(time_ms)
        print(f"decayed checks: {len(failures)} failures" + "".join(f"\n  {f}" for f in failures))
        write_to_out("kernel_bench_decay.json", results)
        return 1 if failures else 0
    small = small_checks() + op_checks() + decay_checks()
    print(f"small-shape checks: {len(small)} failures" + "".join(f"\n  {f}" for f in small))
    if args.suite == "quick":  # the CUDA kernel's own checks and its two register budgets
        results["cuda_variants"] = variants()
        write_to_out("kernel_bench_quick.json", results)
        return 1 if small else 0
    if timed:
        results["ceilings"] = ceil = measure_ceilings()
        print(
            f"ceilings: copy {ceil['copy_GBps']:.0f} GB/s, "
            f"bf16 matmul {ceil['bf16_mm_TFLOPs']:.0f} TFLOP/s",
            flush=True,
        )
        results["state_cost"] = state_cost()
        print(f"state-sum kernel vs chain kernel: {results['state_cost']}", flush=True)
        results["cuda_variants"] = variants()
    length = sweep([(16, n) for n in LENGTHS], check=True, timed=timed)
    batch = sweep([(b, 16384) for b in BATCHES if b != 16], check=True, timed=timed)
    results["length_sweep_b16"], results["batch_sweep_n16384"] = length, batch
    if timed:
        both = {
            row: {**length["ms"].get(row, {}), **batch["ms"].get(row, {})} for row in length["ms"]
        }
        print(f"\n{json.dumps(results['env'])}")
        print("\nLatency (ms), batch 16, 16 heads, d=16, Dv=64, bf16\n")
        print(markdown(length["ms"], [f"b16_n{n}" for n in LENGTHS], [str(n) for n in LENGTHS]))
        print("\nLatency (ms), length 16384\n")
        print(markdown(both, [f"b{b}_n16384" for b in BATCHES], [str(b) for b in BATCHES]))
        results["goals"] = goals(length["ms"])
        print("\n" + "\n".join(results["goals"]))
    failures = small + length["failures"] + batch["failures"]
    print(f"\ncorrectness: {len(failures)} failures" + "".join(f"\n  {f}" for f in failures))
    write_to_out("kernel_bench.json", results)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
