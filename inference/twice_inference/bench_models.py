"""Model benchmark: for each family, the smallest paper config with random weights, a parallel vs
recurrent agreement check and a prefill throughput / peak-memory measurement (``--mode check``), or
prefill tokens/s at a fixed batch and several lengths with Based/JRT-RNN timed on both the Triton
kernel and the PyTorch path (``--mode throughput``); printed as a markdown table and written as
JSON. ``python -m twice_inference.bench_models --help``. Tested on CPU at tiny configs in
``tests/test_bench_models.py`` (both modes; the kernel path under the Triton interpreter).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .engine.device_info import nvidia_driver_version
from .engine.throughput import random_ids
from .models.registry import DTYPES, build_model, count_parameters, load_catalog
from .ops.kernel_mode import use_taylor_kernel_mode

# The smallest paper checkpoint of each family in catalog.json (gla has only the 1.3B).
SMALLEST_PAPER_MODEL: dict[str, str] = {
    "transformer": "attn-360m-30b",
    "based": "based-360m-30b",
    "jrt_rnn": "jrt-360m-30b",
    "mamba": "mamba-130m",
    "mamba2": "mamba2-130m",
    "gla": "gla-1.3b-100b",
}
FAMILY_ORDER = list(SMALLEST_PAPER_MODEL)

# Max relative norm error ||a-b|| / ||b|| between the parallel and recurrent forms. float32: the
# model tests' bar. Half precisions: the two forms round in different orders through every layer,
# so they differ by about as much as either differs from the exact function. That "precision
# floor" (the same weights' half vs float32 forward) is measured per model and the tolerance is
# max(fixed, 2 x floor): at the paper sizes with these random weights, bf16 on CPU measured
# floors of 1.5e-2 (attn-360m) to 4.3e-2 (based-360m) and step errors of 1.3e-2 to 4.6e-2 (a
# fixed 2e-2 would fail correct models), while float32 agrees to ~1e-7 (tiny) / 1e-5 (130M).
# A real disagreement (wrong state, a pad leaking in) is O(1).
TOLERANCE: dict[torch.dtype, float] = {
    torch.float32: 1e-4,
    torch.bfloat16: 2e-2,
    torch.float16: 5e-3,
}
STEP_CHECK_TOKENS = 8
WARMUP_RUNS = 2
MIN_TIMED_RUNS = 5
SLOW_RUN_S = 5.0


def log(message: str) -> None:
    # flush: the lead's run may not set PYTHONUNBUFFERED.
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def init_random_weights(model: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Seeded random weights for families without their own ``init_random`` (Mamba, Mamba-2, GLA):
    every matrix normal(0, std) (GPT-2 scale, keeps half-precision activations small) except the
    short-conv filters; dt biases as mamba_ssm draws them (softplus(bias) log-uniform in
    [1e-3, 1e-1], so states remember for tens to thousands of tokens); other 1-D parameters
    (norms, A_log, D) keep the module's structured init. Drawn on the model's device: a 1.3B model
    would take long on the CPU. (train.initialize is the zoo's CPU-side equivalent; it is not
    imported because train.py pulls in the task and tokenizer stack.)"""
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("dt_proj.bias") or name.endswith("dt_bias"):
                u = torch.rand(p.shape, generator=gen, device=p.device, dtype=torch.float32)
                dt = torch.exp(u * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
                p.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            elif p.dim() >= 2 and not name.endswith("conv1d.weight"):
                noise = torch.randn(p.shape, generator=gen, device=p.device, dtype=torch.float32)
                p.copy_(noise * std)


def build_random(
    family: str, config: dict[str, Any], device: str, dtype: torch.dtype, seed: int
) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.device(device):
        model = build_model(family, config)
    model = model.to(dtype=dtype)
    if hasattr(model, "init_random"):  # the family's own init (Transformer++, Based, JRT-RNN)
        model.init_random(seed=seed, std=0.02)
    else:
        init_random_weights(model, seed)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Agreement check
# ---------------------------------------------------------------------------------------------


def max_rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max over rows of ||a - e|| / ||e|| for [..., V] logits, in float64."""
    a, e = actual.double().flatten(0, -2), expected.double().flatten(0, -2)
    return float(((a - e).norm(dim=-1) / e.norm(dim=-1).clamp(min=1e-30)).max())


def check_inputs(
    vocab: int, length: int, pad: int, device: str, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two rows of ``length`` random ids, row 1 left-padded by ``pad``, plus the next
    STEP_CHECK_TOKENS ids for each row."""
    ids = torch.randint(0, vocab, (2, length), generator=gen).to(device)
    mask = torch.ones(2, length, dtype=torch.long, device=device)
    mask[1, :pad] = 0
    ids[1, :pad] = 0
    nxt = torch.randint(0, vocab, (2, STEP_CHECK_TOKENS), generator=gen).to(device)
    return ids, mask, nxt


def agreement_check(
    model: torch.nn.Module, check_len: int, dtype: torch.dtype, device: str, seed: int
) -> dict[str, Any]:
    """forward's last-position logits vs prefill's, and STEP_CHECK_TOKENS steps vs forward on the
    extended sequence. JRT-RNN's encoder reads the first M real tokens non-causally, so parallel
    and recurrent forms only coincide once every prompt holds M real tokens: the check length is
    raised to M + padding for it."""
    encoder_length = int(getattr(getattr(model, "config", None), "encoder_length", 0) or 0)
    length = max(check_len, 2)
    pad = max(1, length // 8)
    length = max(length, encoder_length + pad)  # the padded row keeps >= M real tokens
    gen = torch.Generator().manual_seed(seed + 1)
    ids, mask, nxt = check_inputs(model.vocab_size, length, pad, device, gen)
    ext_ids = torch.cat([ids, nxt], dim=1)
    ext_mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)

    full = model(ext_ids, ext_mask).float()  # causal: position length-1 sees only the prompt
    prefill_logits, state = model.prefill(ids, mask)
    steps = []
    for i in range(STEP_CHECK_TOKENS):
        logits, state = model.step(nxt[:, i], state)
        steps.append(logits.float())
    err_prefill = max_rel_error(prefill_logits.float(), full[:, length - 1])
    err_steps = max_rel_error(torch.stack(steps, dim=1), full[:, length:])

    floor = None
    if dtype != torch.float32:
        reference = copy.deepcopy(model).float()
        exact = reference(ext_ids, ext_mask).float()
        floor = max_rel_error(full[:, length - 1 :], exact[:, length - 1 :])
        del reference, exact
    tolerance = max(TOLERANCE[dtype], 2 * floor) if floor is not None else TOLERANCE[dtype]
    passed = err_prefill <= tolerance and err_steps <= tolerance
    return {
        "check_len": length,
        "err_prefill": err_prefill,
        "err_steps": err_steps,
        "precision_floor": floor,
        "tolerance": tolerance,
        "check": "PASS" if passed else "FAIL",
    }


# ---------------------------------------------------------------------------------------------
# Prefill throughput
# ---------------------------------------------------------------------------------------------


class Timer:
    """CUDA events on a GPU (the host clock would time the launch queue), perf_counter on CPU."""

    def __init__(self, device: str) -> None:
        self.cuda = torch.device(device).type == "cuda"

    def time(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def release_memory(device: str) -> None:
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def time_prefill_at(
    model: torch.nn.Module, seq: int, batch: int, device: str, budget_s: float, seed: int
) -> dict[str, Any]:
    """Warm-ups then timed prefills at one batch size, within ``budget_s`` wall seconds."""
    timer, notes = Timer(device), []
    gen = torch.Generator().manual_seed(seed + 2)
    ids = torch.randint(0, model.vocab_size, (batch, seq), generator=gen).to(device)
    mask = torch.ones_like(ids)
    run = lambda: model.prefill(ids, mask)  # noqa: E731
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    first = timer.time(run)
    warmups = 1
    if first <= SLOW_RUN_S:
        for _ in range(WARMUP_RUNS - 1):
            timer.time(run)
            warmups += 1
    else:
        notes.append(f"slow ({first:.1f} s/run): 1 warm-up")
    times: list[float] = []
    while len(times) < MIN_TIMED_RUNS:
        elapsed = time.perf_counter() - started
        last = times[-1] if times else first
        if times and elapsed + last > budget_s:
            notes.append(f"budget {budget_s:.0f} s: {len(times)} timed runs")
            break
        times.append(timer.time(run))
    median = statistics.median(times)
    return {
        "batch": batch,
        "warmup_runs": warmups,
        "timed_runs": len(times),
        "ms_per_prefill": median * 1000.0,
        "tokens_per_s": seq * batch / median,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "notes": notes,
    }


def probe_prefill_s(model: torch.nn.Module, seq: int, device: str, seed: int) -> float | None:
    """Seconds for one batch-1 prefill at ``seq`` (None on OOM)."""
    timer = Timer(device)
    gen = torch.Generator().manual_seed(seed + 3)
    ids = torch.randint(0, model.vocab_size, (1, seq), generator=gen).to(device)
    mask = torch.ones_like(ids)
    try:
        probe = timer.time(lambda: model.prefill(ids, mask))
        if probe <= SLOW_RUN_S:  # the first call also pays one-off setup; take the better of two
            probe = min(probe, timer.time(lambda: model.prefill(ids, mask)))
        return probe
    except Exception as error:  # noqa: BLE001 - OOM is reported, not raised
        if not is_oom(error):
            raise
        return None


def measure_prefill(
    model: torch.nn.Module, seq: int, batch: int, device: str, budget_s: float, seed: int
) -> dict[str, Any]:
    """Throughput at ``batch``; first a batch-1 probe estimates the cost (an over-estimate: one
    row underuses the GPU) and the batch is halved until the estimate fits a third of the budget,
    so a slow PyTorch path (Mamba-1's chunked scan) cannot run away. OOM halves the batch too."""
    notes: list[str] = []
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    probe = probe_prefill_s(model, seq, device, seed)
    if probe is not None:
        log(f"    batch-1 probe: {probe * 1000:.1f} ms per prefill of {seq}")
    if probe is None:
        release_memory(device)
        log("    OOM at batch 1 (probe)")
        return {"batch": None, "oom": True, "notes": ["OOM at batch 1 (probe)"]}
    if probe > budget_s / 3:
        return {
            "batch": 1,
            "warmup_runs": 0,
            "timed_runs": 1,
            "ms_per_prefill": probe * 1000.0,
            "tokens_per_s": seq / probe,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "notes": [f"too slow for the budget: only a batch-1 probe ({probe:.1f} s) timed"],
        }
    run_batch = batch
    while run_batch > 1 and probe * run_batch > budget_s / 3:
        run_batch //= 2
    if run_batch != batch:
        notes.append(
            f"batch {batch}->{run_batch} (batch-1 probe {probe:.2f} s, est. "
            f"{probe * batch:.0f} s per run at {batch})"
        )
    while True:
        try:
            result = time_prefill_at(model, seq, run_batch, device, budget_s, seed)
            result["notes"] = notes + result["notes"]
            return result
        except Exception as error:  # noqa: BLE001 - OOM is reported, not raised
            if not is_oom(error):
                raise
        release_memory(device)  # here, not in the except: its traceback pins the tensors
        notes.append(f"OOM at batch {run_batch}")
        log(f"    OOM at batch {run_batch}")
        if run_batch == 1:
            return {"batch": None, "oom": True, "notes": notes}
        run_batch //= 2


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def resolve_families(families: str | list[str]) -> list[str]:
    names = FAMILY_ORDER if families in ("all", ["all"]) else families
    if isinstance(names, str):
        names = [f.strip() for f in names.split(",") if f.strip()]
    unknown = [f for f in names if f not in SMALLEST_PAPER_MODEL]
    if unknown:
        raise ValueError(f"--families: unknown {unknown}; known: {FAMILY_ORDER} or 'all'")
    return list(names)


def bench_family(
    family: str,
    name: str,
    config: dict[str, Any],
    *,
    device: str,
    dtype: torch.dtype,
    seq: int,
    batch: int,
    check_len: int,
    budget_s: float,
    seed: int,
) -> dict[str, Any]:
    """One family, each phase isolated so a failure in one still reports the others."""
    row: dict[str, Any] = {"family": family, "model": name, "dtype": str(dtype).split(".")[-1]}
    errors: list[str] = []
    started = time.perf_counter()
    try:
        model = build_random(family, config, device, dtype, seed)
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        if is_oom(error):
            release_memory(device)
        return {**row, "errors": [f"build: {type(error).__name__}: {error}"]}
    row["params"] = count_parameters(model)
    row["state_bytes"] = int(model.state_size_bytes(1, seq))
    log(f"  built {name}: {row['params']:,} params in {time.perf_counter() - started:.1f} s")

    # no_grad, not inference_mode, for the check: it deep-copies the model (float32 reference),
    # and parameters copied inside inference mode could not be used outside it.
    with torch.no_grad():
        try:
            row.update(agreement_check(model, check_len, dtype, device, seed))
            log(
                f"  check: prefill {row['err_prefill']:.2e}, steps {row['err_steps']:.2e}, "
                f"tol {row['tolerance']:.1e} -> {row['check']}"
            )
        except Exception as error:  # noqa: BLE001
            traceback.print_exc()
            errors.append(f"check: {type(error).__name__}: {error}")
    release_memory(device)
    with torch.inference_mode():
        try:
            row["prefill"] = measure_prefill(model, seq, batch, device, budget_s, seed)
            p = row["prefill"]
            if not p.get("oom"):
                log(
                    f"  prefill {seq}x{p['batch']}: {p['tokens_per_s']:,.0f} tok/s, "
                    f"{p['ms_per_prefill']:.1f} ms ({p['timed_runs']} runs) {p['notes']}"
                )
        except Exception as error:  # noqa: BLE001
            traceback.print_exc()
            errors.append(f"prefill: {type(error).__name__}: {error}")
    del model
    release_memory(device)
    row["errors"] = errors
    row["wall_s"] = time.perf_counter() - started
    return row


def run(
    families: str | list[str] = "all",
    configs_override: dict[str, dict[str, Any]] | None = None,
    *,
    device: str = "cuda",
    dtype: torch.dtype | str = torch.bfloat16,
    seq: int = 2048,
    batch: int = 16,
    check_len: int = 256,
    budget_s: float = 30.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Benchmark ``families``; ``configs_override`` maps a family to a config dict used instead
    of its catalog entry (tests use tiny ones). Returns the JSON-able report with the table."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        dtype = DTYPES[dtype]
    for field, value in (("seq", seq), ("batch", batch), ("check_len", check_len)):
        if value < 1:
            raise ValueError(f"{field} must be >= 1, got {value}")
    names = resolve_families(families)
    overrides = configs_override or {}
    catalog = load_catalog() if any(f not in overrides for f in names) else None
    cuda = torch.device(device).type == "cuda"
    meta = {
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "dtype": str(dtype).split(".")[-1],
        "seq": seq,
        "batch": batch,
        "check_len": check_len,
        "budget_s": budget_s,
        "seed": seed,
    }
    log(f"bench_models on {meta['device']}, torch {meta['torch']}, {meta['dtype']}")
    rows = []
    for family in names:
        if family in overrides:
            name, config = f"{family}-override", overrides[family]
        else:
            name = SMALLEST_PAPER_MODEL[family]
            config = dict(catalog.get(name).config)  # type: ignore[union-attr]
        log(f"[{family}] {name}")
        try:
            rows.append(
                bench_family(
                    family,
                    name,
                    config,
                    device=device,
                    dtype=dtype,
                    seq=seq,
                    batch=batch,
                    check_len=check_len,
                    budget_s=budget_s,
                    seed=seed,
                )
            )
        except Exception as error:  # noqa: BLE001 - last line of defence: keep going
            traceback.print_exc()
            rows.append({"family": family, "model": name, "errors": [repr(error)]})
        log(f"[{family}] done in {rows[-1].get('wall_s', 0.0):.1f} s")
    report = {"meta": meta, "rows": rows}
    report["table"] = markdown_table(report)
    return report


# ---------------------------------------------------------------------------------------------
# Throughput mode: prefill tokens/s at fixed batch and lengths (the Pareto plot's x-axis)
# ---------------------------------------------------------------------------------------------

THROUGHPUT_LENGTHS = (2048, 8192)
THROUGHPUT_RUNS = 10
# Families whose linear attention has a Triton kernel: timed with it ("kernel") and without
# ("torch") in one process, so the A/B shares the card, clocks and inputs.
KERNEL_FAMILIES = ("based", "jrt_rnn")
PARITY_BATCH = 2


def kernel_variants(device: str) -> dict[str, str]:
    """Path name -> kernel mode. On CPU with TRITON_INTERPRET=1 (the tests) the kernel path runs
    under Triton's interpreter; elsewhere "auto" takes the kernels on CUDA only."""
    cpu_interpreted = (
        torch.device(device).type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"
    )
    return {"kernel": "interpreter" if cpu_interpreted else "auto", "torch": "off"}


def environment(device: str) -> dict[str, Any]:
    """What the figures were measured on."""
    cuda = torch.device(device).type == "cuda"
    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:
        triton_version = None
    return {
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "driver": nvidia_driver_version() if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
        "torch": torch.__version__,
        "triton": triton_version,
        "python": platform.python_version(),
    }


def time_point(
    model: torch.nn.Module,
    seq: int,
    batch: int,
    runs: int,
    device: str,
    budget_s: float,
    seed: int,
) -> dict[str, Any]:
    """Median prefill time of ``runs`` timed runs at (batch, seq) after two warm-ups (the first
    pays compilation and autotuning). A batch-1 probe first skips a point whose batch-``batch``
    run would clearly not fit ``budget_s`` (Mamba-1's PyTorch scan); a point whose warm run
    leaves room for fewer than ``runs`` runs is timed with as many as fit, and says so."""
    timer, cuda = Timer(device), torch.device(device).type == "cuda"
    probe_ids = random_ids(1, seq, model.vocab_size, seed, device)
    probe_run = lambda: model.prefill(probe_ids, torch.ones_like(probe_ids))  # noqa: E731
    probe = timer.time(probe_run)
    if probe * batch > budget_s:  # the first call may have paid a one-off compile: once more
        probe = min(probe, timer.time(probe_run))
    if probe * batch > budget_s:  # batch 1 underuses the GPU: this over-estimates, never under
        return {
            "skipped": True,
            "batch1_probe_ms": probe * 1000.0,
            "notes": [
                f"skipped: a batch-1 prefill took {probe:.2f} s, so batch {batch} would take "
                f"up to {probe * batch:.0f} s per run; the point budget is {budget_s:.0f} s"
            ],
        }
    ids = random_ids(batch, seq, model.vocab_size, seed + 1, device)
    mask = torch.ones_like(ids)
    run = lambda: model.prefill(ids, mask)  # noqa: E731
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timer.time(run)
    warm = timer.time(run)
    notes = []
    count = runs
    if warm * runs > budget_s:
        count = max(1, int(budget_s / warm))
        notes.append(f"capped: {count} timed runs, not {runs} ({warm:.2f} s per run)")
    times = [timer.time(run) for _ in range(count)]
    median = statistics.median(times)
    return {
        "ms_per_prefill": median * 1000.0,
        "tokens_per_s": seq * batch / median,
        "timed_runs": count,
        "spread_ms": [min(times) * 1000.0, max(times) * 1000.0],
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "notes": notes,
    }


def guarded_point(model: torch.nn.Module, device: str, **kwargs: Any) -> dict[str, Any]:
    """``time_point`` with an out-of-memory recorded instead of raised."""
    oom = None
    try:
        return time_point(model, device=device, **kwargs)
    except Exception as error:  # noqa: BLE001 - OOM is reported, not raised
        if not is_oom(error):
            raise
        oom = f"OOM: {str(error).splitlines()[0][:160]}"
    release_memory(device)  # here, not in the except: its traceback pins the tensors
    return {"oom": True, "notes": [oom]}


def kernel_parity(model: torch.nn.Module, seq: int, device: str, seed: int) -> float:
    """Max relative error of the last-position logits, kernel path vs PyTorch path, on a small
    batch: 0.0 would mean the kernel was never taken."""
    ids = random_ids(PARITY_BATCH, seq, model.vocab_size, seed + 2, device)
    logits = {}
    for variant, mode in kernel_variants(device).items():
        with use_taylor_kernel_mode(mode):
            logits[variant], _ = model.prefill(ids, torch.ones_like(ids))
    return max_rel_error(logits["kernel"], logits["torch"])


def throughput_family(
    family: str,
    name: str,
    config: dict[str, Any],
    *,
    device: str,
    dtype: torch.dtype,
    lengths: list[int],
    batch: int,
    runs: int,
    point_budget_s: float,
    deadline: float,
    seed: int,
) -> list[dict[str, Any]]:
    """One row per path (kernel / torch for the kernel families, else the family's only one),
    each with a point per length."""
    variants = kernel_variants(device) if family in KERNEL_FAMILIES else {"default": None}
    base = {"family": family, "model": name, "dtype": str(dtype).split(".")[-1]}
    if time.perf_counter() > deadline:  # not even built: a 1.3B build costs seconds too
        spent = {str(seq): {"skipped": True, "notes": ["total budget spent"]} for seq in lengths}
        return [{**base, "path": v, "points": dict(spent), "errors": []} for v in variants]
    try:
        model = build_random(family, config, device, dtype, seed)
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        release_memory(device)
        return [{**base, "path": "-", "errors": [f"build: {type(error).__name__}: {error}"]}]
    base["params"] = count_parameters(model)
    rows = [{**base, "path": variant, "points": {}, "errors": []} for variant in variants]
    with torch.inference_mode():
        if family in KERNEL_FAMILIES:
            try:
                err = kernel_parity(model, lengths[0], device, seed)
                for row in rows:
                    row["kernel_vs_torch_rel_err"] = err
                log(f"  kernel vs torch logits at {lengths[0]}: max rel err {err:.2e}")
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                rows[0]["errors"].append(f"parity: {type(error).__name__}: {error}")
            release_memory(device)
        for seq in lengths:
            for row, mode in zip(rows, variants.values(), strict=True):
                if time.perf_counter() > deadline:
                    row["points"][str(seq)] = {"skipped": True, "notes": ["total budget spent"]}
                    continue
                try:
                    with use_taylor_kernel_mode(mode) if mode else contextlib.nullcontext():
                        point = guarded_point(
                            model,
                            device,
                            seq=seq,
                            batch=batch,
                            runs=runs,
                            budget_s=point_budget_s,
                            seed=seed + seq,
                        )
                except Exception as error:  # noqa: BLE001
                    traceback.print_exc()
                    point = {"error": f"{type(error).__name__}: {error}", "notes": []}
                row["points"][str(seq)] = point
                release_memory(device)
                log(f"  {row['path']} {seq}x{batch}: {describe_point(point)}")
    del model
    release_memory(device)
    return rows


def describe_point(point: dict[str, Any]) -> str:
    if "tokens_per_s" in point:
        return f"{point['tokens_per_s']:,.0f} tok/s, {point['ms_per_prefill']:.1f} ms"
    if point.get("oom"):
        return "OOM"
    if "error" in point:
        return "error"
    return "skipped"


def run_throughput(
    families: str | list[str] = "all",
    configs_override: dict[str, dict[str, Any]] | None = None,
    *,
    device: str = "cuda",
    dtype: torch.dtype | str = torch.bfloat16,
    lengths: tuple[int, ...] | list[int] = THROUGHPUT_LENGTHS,
    batch: int = 16,
    runs: int = THROUGHPUT_RUNS,
    point_budget_s: float = 12.0,
    total_budget_s: float = 240.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Prefill tokens/s of every family at ``batch`` x each of ``lengths``, random weights. Points
    left when ``total_budget_s`` is spent are marked skipped, so the run ends in bounded time."""
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        dtype = DTYPES[dtype]
    lengths = list(lengths)
    if not lengths or min(lengths) < 1:
        raise ValueError(f"lengths must be >= 1, got {lengths}")
    for field, value in (("batch", batch), ("runs", runs)):
        if value < 1:
            raise ValueError(f"{field} must be >= 1, got {value}")
    names = resolve_families(families)
    overrides = configs_override or {}
    catalog = load_catalog() if any(f not in overrides for f in names) else None
    meta = {
        **environment(device),
        "mode": "throughput",
        "dtype": str(dtype).split(".")[-1],
        "batch": batch,
        "lengths": lengths,
        "runs": runs,
        "point_budget_s": point_budget_s,
        "total_budget_s": total_budget_s,
        "seed": seed,
    }
    log(
        f"bench_models throughput on {meta['device']} (driver {meta['driver']}), torch "
        f"{meta['torch']}, triton {meta['triton']}, {meta['dtype']}"
    )
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for family in names:
        if family in overrides:
            name, config = f"{family}-override", overrides[family]
        else:
            name = SMALLEST_PAPER_MODEL[family]
            config = dict(catalog.get(name).config)  # type: ignore[union-attr]
        log(f"[{family}] {name}")
        rows.extend(
            throughput_family(
                family,
                name,
                config,
                device=device,
                dtype=dtype,
                lengths=lengths,
                batch=batch,
                runs=runs,
                point_budget_s=point_budget_s,
                deadline=started + total_budget_s,
                seed=seed,
            )
        )
    meta["wall_s"] = time.perf_counter() - started
    report = {"meta": meta, "rows": rows}
    report["table"] = throughput_table(report)
    return report


def throughput_table(report: dict[str, Any]) -> str:
    meta, lengths = report["meta"], report["meta"]["lengths"]
    head = "| family | model | params | path |" + "".join(
        f" tok/s @{n} | ms @{n} | peak GiB @{n} |" for n in lengths
    )
    lines = [
        f"{meta['device']} | driver {meta['driver']} | CUDA {meta['cuda']} | torch "
        f"{meta['torch']} | triton {meta['triton']} | {meta['dtype']} | batch {meta['batch']} | "
        f"median of {meta['runs']} prefills (model.prefill: logits at the last position + state)",
        "",
        head,
        "|---|---|---:|---|" + "---:|---:|---:|" * len(lengths),
    ]
    notes = []
    for row in report["rows"]:
        cells = []
        for n in lengths:
            point = row.get("points", {}).get(str(n), {})
            if "tokens_per_s" in point:
                cells += [
                    f"{point['tokens_per_s']:,.0f}",
                    f"{point['ms_per_prefill']:.1f}",
                    _fmt(point["peak_gib"], ".1f"),
                ]
            else:
                cells += [describe_point(point) if point else "-", "-", "-"]
            notes += [
                f"- {row['family']} {row['path']} @{n}: {note}" for note in point.get("notes", [])
            ]
            if "error" in point:
                notes.append(f"- {row['family']} {row['path']} @{n}: {point['error']}")
        lines.append(
            f"| {row['family']} | {row['model']} | {_fmt(row.get('params'), ',')} | "
            f"{row.get('path', '-')} | " + " | ".join(cells) + " |"
        )
        notes += [f"- {row['family']}: {error}" for error in row.get("errors", [])]
    for family in KERNEL_FAMILIES:
        pair = {r["path"]: r for r in report["rows"] if r["family"] == family}
        if "kernel" not in pair or "torch" not in pair:
            continue
        if "kernel_vs_torch_rel_err" in pair["kernel"]:
            notes.append(
                f"- {family}: last-position logits, kernel vs torch path, max rel err "
                f"{pair['kernel']['kernel_vs_torch_rel_err']:.2e} (0 = kernel not taken)"
            )
        for n in lengths:
            k, t = pair["kernel"]["points"].get(str(n), {}), pair["torch"]["points"].get(str(n), {})
            if "ms_per_prefill" in k and "ms_per_prefill" in t:
                speedup = t["ms_per_prefill"] / k["ms_per_prefill"]
                notes.append(f"- {family} @{n}: kernel path {speedup:.2f}x the torch path")
    return "\n".join(lines + ([""] + notes if notes else []))


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown_table(report: dict[str, Any]) -> str:
    meta = report["meta"]
    seq = meta["seq"]
    lines = [
        f"GPU/CPU: {meta['device']} | torch {meta['torch']} | dtype {meta['dtype']} | "
        f"check len {meta['check_len']} (+{STEP_CHECK_TOKENS} steps)",
        "",
        "| family | model | params | state bytes | dtype | max rel err prefill | max rel err steps "
        "| check (tol) | prefill tok/s (seq×batch) | peak GiB | ms per prefill |",
        "|---|---|---:|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    notes = []
    for row in report["rows"]:
        p = row.get("prefill") or {}
        if p.get("oom"):
            throughput, ms, peak = "OOM", "OOM", "-"
        elif p:
            throughput = f"{p['tokens_per_s']:,.0f} ({seq}×{p['batch']})"
            ms, peak = f"{p['ms_per_prefill']:.1f}", _fmt(p["peak_gib"], ".2f")
        else:
            throughput, ms, peak = "error", "-", "-"
        check = row.get("check", "error")
        if "tolerance" in row:
            check = f"{check} ({row['tolerance']:.1e})"
        lines.append(
            f"| {row['family']} | {row['model']} | {_fmt(row.get('params'), ',')} | "
            f"{_fmt(row.get('state_bytes'), ',')} | {row.get('dtype', '-')} | "
            f"{_fmt(row.get('err_prefill'), '.2e')} | {_fmt(row.get('err_steps'), '.2e')} | "
            f"{check} | {throughput} | {peak} | {ms} |"
        )
        for note in p.get("notes", []) + row.get("errors", []):
            notes.append(f"- {row['family']}: {note}")
        if row.get("check_len") not in (None, meta["check_len"]):
            notes.append(f"- {row['family']}: check length {row['check_len']} (>= encoder M)")
        if row.get("precision_floor") is not None:
            notes.append(
                f"- {row['family']}: {meta['dtype']} vs float32 forward (precision floor) "
                f"{row['precision_floor']:.2e}"
            )
    lines.append(f"\nstate bytes: one sequence after {seq} tokens.")
    return "\n".join(lines + ([""] + notes if notes else []))


def emit(report: dict[str, Any], out: Path | None) -> None:
    """Print the report's table; write the whole report as JSON when asked."""
    print("\n" + report["table"], flush=True)
    if out:
        out.write_text(json.dumps(report, indent=2, default=str))
        log(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twice_inference.bench_models")
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
    parser.add_argument("--runs", type=int, default=THROUGHPUT_RUNS, help="throughput: timed runs")
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
        report = run_throughput(
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
    report = run(
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
