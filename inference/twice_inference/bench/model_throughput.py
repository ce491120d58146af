"""Throughput mode of the model benchmark (``python -m twice_inference.bench.models --mode
throughput``): prefill tokens/s of every family at a fixed batch and several lengths (the Pareto
plot's x-axis), random weights, with Based/JRT-RNN timed on both the Triton kernel and the PyTorch
path in one process. Tested on CPU at tiny configs in ``tests/test_bench_models.py`` (the kernel
path under the Triton interpreter).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import traceback
from typing import Any

import torch

from ..engine.throughput import random_ids
from ..models.registry import count_parameters
from ..ops.kernel_mode import use_taylor_kernel_mode
from .model_common import (
    build_random,
    environment,
    family_configs,
    fmt,
    is_oom,
    log,
    max_rel_error,
    release_memory,
    resolve_dtype,
    resolve_families,
    time_once,
)

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
    cuda = torch.device(device).type == "cuda"
    probe_ids = random_ids(1, seq, model.vocab_size, seed, device)
    probe_run = lambda: model.prefill(probe_ids, torch.ones_like(probe_ids))  # noqa: E731
    probe = time_once(probe_run, device)
    if probe * batch > budget_s:  # the first call may have paid a one-off compile: once more
        probe = min(probe, time_once(probe_run, device))
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
    time_once(run, device)
    warm = time_once(run, device)
    notes = []
    count = runs
    if warm * runs > budget_s:
        count = max(1, int(budget_s / warm))
        notes.append(f"capped: {count} timed runs, not {runs} ({warm:.2f} s per run)")
    times = [time_once(run, device) for _ in range(count)]
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
    dtype = resolve_dtype(dtype)
    lengths = list(lengths)
    if not lengths or min(lengths) < 1:
        raise ValueError(f"lengths must be >= 1, got {lengths}")
    for field, value in (("batch", batch), ("runs", runs)):
        if value < 1:
            raise ValueError(f"{field} must be >= 1, got {value}")
    names = resolve_families(families)
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
        f"bench.models throughput on {meta['device']} (driver {meta['driver']}), torch "
        f"{meta['torch']}, triton {meta['triton']}, {meta['dtype']}"
    )
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for family, name, config in family_configs(names, configs_override):
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
                    fmt(point["peak_gib"], ".1f"),
                ]
            else:
                cells += [describe_point(point) if point else "-", "-", "-"]
            notes += [
                f"- {row['family']} {row['path']} @{n}: {note}" for note in point.get("notes", [])
            ]
            if "error" in point:
                notes.append(f"- {row['family']} {row['path']} @{n}: {point['error']}")
        lines.append(
            f"| {row['family']} | {row['model']} | {fmt(row.get('params'), ',')} | "
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
