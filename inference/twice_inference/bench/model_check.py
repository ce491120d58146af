"""Check mode of the model benchmark (``python -m twice_inference.bench.models``): for each
family, the smallest paper config with random weights, a parallel vs recurrent agreement check and
a prefill throughput / peak-memory measurement, as a markdown table and JSON. Tested on CPU at
tiny configs in ``tests/test_bench_models.py``.
"""

from __future__ import annotations

import copy
import statistics
import time
import traceback
from typing import Any

import torch

from ..models.registry import count_parameters
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


def time_prefill_at(
    model: torch.nn.Module, seq: int, batch: int, device: str, budget_s: float, seed: int
) -> dict[str, Any]:
    """Warm-ups then timed prefills at one batch size, within ``budget_s`` wall seconds."""
    notes: list[str] = []
    gen = torch.Generator().manual_seed(seed + 2)
    ids = torch.randint(0, model.vocab_size, (batch, seq), generator=gen).to(device)
    mask = torch.ones_like(ids)
    run = lambda: model.prefill(ids, mask)  # noqa: E731
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    first = time_once(run, device)
    warmups = 1
    if first <= SLOW_RUN_S:
        for _ in range(WARMUP_RUNS - 1):
            time_once(run, device)
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
        times.append(time_once(run, device))
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
    gen = torch.Generator().manual_seed(seed + 3)
    ids = torch.randint(0, model.vocab_size, (1, seq), generator=gen).to(device)
    mask = torch.ones_like(ids)
    try:
        probe = time_once(lambda: model.prefill(ids, mask), device)
        if probe <= SLOW_RUN_S:  # the first call also pays one-off setup; take the better of two
            probe = min(probe, time_once(lambda: model.prefill(ids, mask), device))
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
    dtype = resolve_dtype(dtype)
    for field, value in (("seq", seq), ("batch", batch), ("check_len", check_len)):
        if value < 1:
            raise ValueError(f"{field} must be >= 1, got {value}")
    names = resolve_families(families)
    meta = {
        **environment(device),
        "dtype": str(dtype).split(".")[-1],
        "seq": seq,
        "batch": batch,
        "check_len": check_len,
        "budget_s": budget_s,
        "seed": seed,
    }
    log(f"bench.models on {meta['device']}, torch {meta['torch']}, {meta['dtype']}")
    rows = []
    for family, name, config in family_configs(names, configs_override):
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
            ms, peak = f"{p['ms_per_prefill']:.1f}", fmt(p["peak_gib"], ".2f")
        else:
            throughput, ms, peak = "error", "-", "-"
        check = row.get("check", "error")
        if "tolerance" in row:
            check = f"{check} ({row['tolerance']:.1e})"
        lines.append(
            f"| {row['family']} | {row['model']} | {fmt(row.get('params'), ',')} | "
            f"{fmt(row.get('state_bytes'), ',')} | {row.get('dtype', '-')} | "
            f"{fmt(row.get('err_prefill'), '.2e')} | {fmt(row.get('err_steps'), '.2e')} | "
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
