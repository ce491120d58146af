"""End-to-end speed on a GPU: what the paper's Table 1 grid costs in GPU-hours, and our engine
against Hugging Face ``generate`` on the same weights and prompts.

    python -m twice_inference.bench.end_to_end [--grid-budget-s 240] [--compare-prompts 64]
        [--profile attn-360m-30b]

Grid cost (sample and extrapolate). The grid is 16 models x 6 tasks x {default, JRT-Prompt}
at the paper's example counts (``tasks.datasets.PAPER_SIZES``), 48 new tokens, batches of 32
longest first, prompts capped at 2000 tokens (specs/paper/table1.yaml). No datasets or weights
are needed: each task's prompt lengths are drawn from a log-normal whose mean is the paper's mean
document length (its Table 7), cut to the 950-token window, plus QUESTION_TOKENS of question and
template; JRT-Prompt reads the cut document twice. Each model is built at paper size with random
weights in its catalog dtype, and its prefill (at two prompt lengths) and decode step (at two
cache lengths) are timed at batch 32; both are linear in length for every family here, so each
batch of the grid is priced as prefill(longest prompt) + 47 steps, and the grid is the sum. Steps
are timed as the engine takes them on a GPU, replayed from a CUDA graph (a batch's first step
eager plus the capture, priced on its own), and also eagerly, for a second price in the same run.
A model whose batch-32 prefill would take over PROBE_LIMIT_S at 2000 tokens (Mamba-1's PyTorch
scan) is timed at 256 and 512 tokens and extrapolated along the same line; the report says so.

Engine vs ``generate``: a Transformer++ (``attn-360m-30b``, as transformers' Phi-3, whose
partial rotary, fused qkv and gated MLP are the same architecture) and a Mamba
(``mamba-130m``, transformers' Mamba) with one set of random weights, loaded into both; the same
left-padded prompts (lengths from the SWDE distribution above), greedy, exactly 48 new tokens,
batch 32. Prints examples/s of each and how far their first-step logits and tokens agree.

Needs a CUDA GPU and transformers; writes $OUT/end_to_end.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine.decode_graph import GraphedDecoder
from ..engine.generate import GenerationResult, greedy_generate, longest_first_batches
from ..models.checkpoint import convert_mamba
from ..models.registry import DTYPES, build_model, load_catalog
from ..tasks.datasets import PAPER_SIZES
from .model_common import (
    environment,
    is_oom,
    log,
    max_rel_error,
    release_memory,
    time_once,
    write_to_out,
)

# specs/paper/table1.yaml's models and generation settings.
TABLE1_MODELS = (
    "attn-1b",
    "mamba-1b",
    "based-1b",
    "attn-1b-50bn",
    "mamba-1b-50b",
    "based-1b-50b",
    "gla-1.3b-100b",
    "gla-2.7b-100b",
    "mamba-130m",
    "mamba-370m",
    "mamba-1.4b",
    "mamba-2.8b",
    "mamba2-130m",
    "mamba2-370m",
    "mamba2-1.3b",
    "mamba2-2.7b",
)
BATCH, NEW_TOKENS, MAX_PROMPT_TOKENS, CONTEXT_TOKENS = 32, 48, 2000, 950
# The paper's Table 7: mean document length in tokens per task.
MEAN_DOC_TOKENS = {
    "fda": 1999.9,
    "swde": 1036.1,
    "squad": 151.9,
    "triviaqa": 310.1,
    "nq": 8857.7,
    "drop": 236.6,
}
QUESTION_TOKENS = 40  # assumed: the cloze question and template around the document
DOC_LENGTH_SIGMA = 0.5  # assumed spread (log-normal sigma) around the paper's mean
STRATEGY_REPEATS = {"default": 1, "jrt_prompt": 2}
PROBE_LIMIT_S = 8.0  # a batch-32 prefill at 2000 tokens estimated beyond this is extrapolated


@dataclass(frozen=True)
class StepTimes:
    first_s: float  # the batch's first decode call (with graphs: an eager step and the capture)
    step_s: float  # median of the calls after it


def prompt_lengths(task: str, strategy: str, seed: int = 0) -> list[int]:
    """Synthetic prompt lengths for one (task, strategy) cell at the paper's example count."""
    mean = MEAN_DOC_TOKENS[task]
    mu = math.log(mean) - DOC_LENGTH_SIGMA**2 / 2  # so the log-normal's mean is `mean`
    rng = np.random.default_rng([seed, sorted(MEAN_DOC_TOKENS).index(task)])
    docs = np.minimum(rng.lognormal(mu, DOC_LENGTH_SIGMA, PAPER_SIZES[task]), CONTEXT_TOKENS)
    prompts = STRATEGY_REPEATS[strategy] * np.maximum(docs.round(), 1) + QUESTION_TOKENS
    return [int(min(p, MAX_PROMPT_TOKENS)) for p in prompts]


def linear(points: dict[int, float]) -> Callable[[float], float]:
    """The line through two (length, seconds) points (flat for one)."""
    (x0, y0), (x1, y1) = sorted(points.items())[0], sorted(points.items())[-1]
    slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
    return lambda x: y0 + slope * (x - x0)


def grid_seconds(
    prefill: Callable[[float], float],
    step: Callable[[float], float],
    first_step: Callable[[float], float] | None = None,
) -> float:
    """One model's share of the grid: every (task, strategy) cell, batch by batch. A batch costs
    its prefill, its first decode step (``first_step``: with graphs, the eager step that also
    captures; ``step`` when not given) and the remaining NEW_TOKENS - 2 steps."""
    first = first_step or step
    total = 0.0
    for task in MEAN_DOC_TOKENS:
        for strategy in STRATEGY_REPEATS:
            lengths = prompt_lengths(task, strategy)
            for batch in longest_first_batches(lengths, BATCH):
                longest = max(lengths[i] for i in batch)
                middle = longest + NEW_TOKENS / 2
                total += prefill(longest) + first(longest) + (NEW_TOKENS - 2) * step(middle)
    return total


def build_random(name: str, device: str) -> tuple[torch.nn.Module, str]:
    """A catalog model at paper size with torch's default random init (drawn on the GPU: the
    values do not change the time, and a 2.8B model's CPU init would take minutes)."""
    entry = load_catalog().get(name)
    dtype = DTYPES[entry.dtype]
    with torch.device(device):
        model = build_model(entry.family, dict(entry.config))
    return model.to(dtype=dtype).eval(), entry.dtype


def timed_prefill(model: Any, batch: int, length: int, device: str) -> float:
    ids = torch.randint(1, model.vocab_size, (batch, length), device=device)
    mask = torch.ones_like(ids)
    run = lambda: model.prefill(ids, mask)  # noqa: E731
    run()  # compiles / autotunes
    return statistics.median(time_once(run, device) for _ in range(3))


def timed_result(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    box: dict[str, Any] = {}
    return time_once(lambda: box.setdefault("result", fn()), device), box["result"]


def timed_steps(model: Any, batch: int, length: int, device: str, graphs: bool) -> StepTimes:
    """Decode steps after a prompt of ``length`` tokens, stepped as the engine steps them
    (``GraphedDecoder`` on the reserved state): the first call's seconds (with ``graphs``, an
    eager step plus the capture) and the median of the next five calls (replays)."""
    ids = torch.randint(1, model.vocab_size, (batch, length), device=device)
    logits, state = model.prefill(ids, torch.ones_like(ids))
    reserve = getattr(model, "reserve_decoding", None)
    if reserve is not None:
        state = reserve(state, NEW_TOKENS - 1)
    decoder = GraphedDecoder(model.step, state, torch.device(device), graphs)
    del state
    token = logits.argmax(-1)
    times = []
    for _ in range(6):
        seconds, logits = timed_result(lambda token=token: decoder(token), device)
        times.append(seconds)
        token = logits.argmax(-1)
    if graphs and not decoder.graphed:
        raise RuntimeError(f"decode step could not be captured: {decoder.fallback_reason}")
    return StepTimes(first_s=times[0], step_s=statistics.median(times[1:]))


def model_cost(name: str, device: str) -> dict[str, Any]:
    """Prefill at two lengths, and decode steps both graphed (as the engine decodes on a GPU) and
    eager, each priced over the whole grid, so the two prices come from one process."""
    model, dtype = build_random(name, device)
    row: dict[str, Any] = {"model": name, "dtype": dtype, "notes": []}
    with torch.inference_mode():
        short = timed_prefill(model, BATCH, 256, device)
        lengths = (512, MAX_PROMPT_TOKENS)
        if short * MAX_PROMPT_TOKENS / 256 > PROBE_LIMIT_S:  # Mamba-1's PyTorch scan
            lengths = (256, 512)
            row["notes"].append("prefill and steps timed at 256/512 tokens, extrapolated")
        prefill_points = {n: timed_prefill(model, BATCH, n, device) for n in lengths}
        eager = {n: timed_steps(model, BATCH, n, device, graphs=False) for n in lengths}
        graphed = {n: timed_steps(model, BATCH, n, device, graphs=True) for n in lengths}
    row["prefill_s"] = prefill_points
    row["step_s"] = {n: t.step_s for n, t in graphed.items()}
    row["first_step_s"] = {n: t.first_s for n, t in graphed.items()}
    row["eager_step_s"] = {n: t.step_s for n, t in eager.items()}
    prefill = linear(prefill_points)
    row["grid_s"] = grid_seconds(prefill, linear(row["step_s"]), linear(row["first_step_s"]))
    row["grid_eager_s"] = grid_seconds(prefill, linear(row["eager_step_s"]))
    del model
    release_memory(device)
    return row


def grid_cost(device: str, budget_s: float, models: list[str]) -> dict[str, Any]:
    examples = sum(PAPER_SIZES[t] for t in MEAN_DOC_TOKENS) * len(STRATEGY_REPEATS)
    started, rows = time.perf_counter(), []
    for name in models:
        if time.perf_counter() - started > budget_s:
            rows.append({"model": name, "notes": ["not measured: benchmark budget spent"]})
            continue
        try:
            rows.append(model_cost(name, device))
        except Exception as error:  # noqa: BLE001 - one model's failure is reported
            if is_oom(error):
                release_memory(device)
            rows.append({"model": name, "notes": [f"{type(error).__name__}: {error}"[:300]]})
        row = rows[-1]
        grid = (
            f"{row['grid_s'] / 3600:.3f} GPU-h graphed, {row['grid_eager_s'] / 3600:.3f} eager"
            if "grid_s" in row
            else "-"
        )
        log(f"  {name}: {grid} {row['notes']}")
    measured = [r["grid_s"] for r in rows if "grid_s" in r]
    return {
        "examples_per_model": examples,
        "rows": rows,
        "measured_models": len(measured),
        "total_gpu_hours_measured": sum(measured) / 3600,
        "total_gpu_hours_eager_decode": sum(r["grid_eager_s"] for r in rows if "grid_s" in r)
        / 3600,
        "wall_s": time.perf_counter() - started,
    }


# ---------------------------------------------------------------------------------------------
# Engine vs Hugging Face generate
# ---------------------------------------------------------------------------------------------


def phi3_to_transformer(hf: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """transformers Phi-3 keys -> our Transformer++ keys. Phi-3's gate_up_proj is [gate; up];
    our fc1 is [value; gate]."""
    out = {
        "embeddings.weight": hf["model.embed_tokens.weight"],
        "final_norm.weight": hf["model.norm.weight"],
        "lm_head.weight": hf.get("lm_head.weight", hf["model.embed_tokens.weight"]),
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        gate, up = hf[p + "mlp.gate_up_proj.weight"].chunk(2, dim=0)
        out |= {
            f"layers.{i}.norm1.weight": hf[p + "input_layernorm.weight"],
            f"layers.{i}.mixer.Wqkv.weight": hf[p + "self_attn.qkv_proj.weight"],
            f"layers.{i}.mixer.out_proj.weight": hf[p + "self_attn.o_proj.weight"],
            f"layers.{i}.norm2.weight": hf[p + "post_attention_layernorm.weight"],
            f"layers.{i}.mlp.fc1.weight": torch.cat([up, gate], dim=0),
            f"layers.{i}.mlp.fc2.weight": hf[p + "mlp.down_proj.weight"],
        }
    return out


def phi3_like(ours: Any) -> Any:
    """A transformers Phi-3 with our Transformer++'s shapes (random init): the same
    architecture (RMSNorm, fused qkv, partial rotary of the first dims, SwiGLU, tied head)."""
    from transformers import Phi3Config, Phi3ForCausalLM

    cfg = ours.config
    hf_cfg = Phi3Config(
        vocab_size=ours.state_dict()["lm_head.weight"].shape[0],
        hidden_size=cfg.d_model,
        intermediate_size=ours.state_dict()["layers.0.mlp.fc2.weight"].shape[1],
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_heads,
        rms_norm_eps=cfg.norm_eps,
        max_position_embeddings=4096,
        original_max_position_embeddings=4096,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": cfg.rotary_base,
            "partial_rotary_factor": cfg.rotary_fraction,
        },
        tie_word_embeddings=cfg.tie_embeddings,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    return Phi3ForCausalLM(hf_cfg)


def paired_models(name: str, device: str) -> tuple[Any, Any]:
    """(ours, transformers') with the same random weights, bf16, on ``device``."""
    entry = load_catalog().get(name)
    with torch.device(device):
        ours = build_model(entry.family, dict(entry.config))
    ours = ours.eval()
    shapes = {k: v.shape for k, v in ours.state_dict().items()}
    vocab = shapes["lm_head.weight"][0]
    if entry.family == "transformer":
        with torch.device(device):
            hf = phi3_like(ours)
        ours.load_state_dict(phi3_to_transformer(hf.state_dict(), len(ours.layers)), strict=True)
    elif entry.family == "mamba":
        from transformers import MambaConfig, MambaForCausalLM

        d_model = entry.config["d_model"]
        d_state = shapes["backbone.layers.0.mixer.A_log"][1]
        dt_rank = shapes["backbone.layers.0.mixer.dt_proj.weight"][1]
        hf_cfg = MambaConfig(
            hidden_size=d_model,
            state_size=d_state,
            num_hidden_layers=entry.config["n_layer"],
            vocab_size=vocab,
            expand=2,
            conv_kernel=4,
            time_step_rank=dt_rank,
            layer_norm_epsilon=1e-5,
            tie_word_embeddings=True,
            pad_token_id=0,
            eos_token_id=2,
        )
        with torch.device(device):
            hf = MambaForCausalLM(hf_cfg)
        ours.load_state_dict(convert_mamba(hf.state_dict()), strict=True)
    else:
        raise ValueError(f"no transformers counterpart wired for family {entry.family!r}")
    return ours.to(torch.bfloat16).eval(), hf.to(torch.bfloat16).eval()


def profiled(fn: Callable[[], Any], device: str) -> dict[str, Any]:
    """One run under torch.profiler: wall seconds, the GPU's busy seconds (kernel time summed),
    and the top operators by their own GPU time and by their own CPU time, to see whether the
    device or the Python/launch side sets the pace."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        wall = time_once(fn, device)
    events = prof.key_averages()
    # kernel rows (device type CUDA) carry the kernels' own time; the CPU rows' sum is kept as a
    # cross-check of how the profiler attributes it
    by_type = {"CUDA": 0.0, "CPU": 0.0}
    for e in events:
        if e.device_type.name in by_type:
            by_type[e.device_type.name] += e.self_device_time_total
    return {
        "wall_s": wall,
        "gpu_busy_s": by_type["CUDA"] / 1e6,
        "gpu_busy_s_from_cpu_rows": by_type["CPU"] / 1e6,
        "cpu_ops": len(prof.events()),
        "top_gpu": events.table(sort_by="self_device_time_total", row_limit=12),
        "top_cpu": events.table(sort_by="self_cpu_time_total", row_limit=12),
    }


def compare_prompts(n: int) -> tuple[list[int], list[list[int]]]:
    """The first ``n`` SWDE-length prompts of random ids (fixed seed) the engine comparisons
    share: (lengths, prompts)."""
    gen = torch.Generator().manual_seed(0)
    lengths = prompt_lengths("swde", "default")[:n]
    return lengths, [torch.randint(3, 1000, (k,), generator=gen).tolist() for k in lengths]


def engine_greedy(model: Any, prompts: list[list[int]], graphs: bool) -> GenerationResult:
    """Our engine on the comparison's settings: greedy, exactly NEW_TOKENS, batches of BATCH."""
    return greedy_generate(
        model,
        prompts,
        max_new_tokens=NEW_TOKENS,
        stop_id=None,
        batch_size=BATCH,
        pad_id=0,
        cuda_graphs=graphs,
    )


def compare_generate(name: str, device: str, prompts_n: int, profile: bool) -> dict[str, Any]:
    ours, hf = paired_models(name, device)
    lengths, prompts = compare_prompts(prompts_n)
    batches = list(longest_first_batches(lengths, BATCH))

    graph_use: dict[str, Any] = {}

    def run_ours(graphs: bool = True) -> list[list[int]]:
        result = engine_greedy(ours, prompts, graphs)
        if graphs:
            graph_use["graphed_batches"] = result.timing.graphed_batches
            graph_use["batches"] = result.timing.batches
            graph_use["fallback"] = result.timing.graph_fallback
        return [g.tokens for g in result.generations]

    def run_hf() -> list[list[int]]:
        from ..engine.generate import left_pad

        out: list[list[int]] = [[] for _ in prompts]
        for batch in batches:
            ids, mask = left_pad([prompts[i] for i in batch], 0, torch.device(device))
            generated = hf.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS,
                do_sample=False,
                pad_token_id=0,
            )
            for row, i in enumerate(batch):
                out[i] = generated[row, ids.shape[1] :].tolist()
        return out

    result: dict[str, Any] = {"model": name, "prompts": len(prompts), "lengths": lengths}
    with torch.inference_mode():
        ids = torch.tensor([prompts[0]], device=device)
        ours_logits, _ = ours.prefill(ids, torch.ones_like(ids))
        hf_logits = hf(input_ids=ids).logits[:, -1]
        result["first_logits_rel_err"] = max_rel_error(ours_logits.float(), hf_logits.float())
        tokens = {}
        sides = (
            ("ours", run_ours),
            ("ours_eager", lambda: run_ours(False)),
            ("hf_generate", run_hf),
        )
        for label, fn in sides:
            fn()  # warm-up: compiles and autotunes
            seconds = []
            for _ in range(2):
                holder: dict[str, Any] = {}
                seconds.append(
                    time_once(lambda fn=fn, holder=holder: holder.update(t=fn()), device)
                )
                tokens[label] = holder["t"]
            result[f"{label}_s"] = min(seconds)
            result[f"{label}_examples_per_s"] = len(prompts) / min(seconds)
        if profile:
            for label, fn in (("ours", run_ours), ("hf_generate", run_hf)):
                result[f"{label}_profile"] = profiled(fn, device)
    same = sum(a == b for a, b in zip(tokens["ours"], tokens["hf_generate"], strict=True))
    result["identical_generations"] = same
    # bf16 decoding is not bitwise reproducible run to run (bench.graph_parity), so read this
    # against two eager runs' agreement, not against every prompt
    result["graph_vs_eager_identical"] = sum(
        a == b for a, b in zip(tokens["ours"], tokens["ours_eager"], strict=True)
    )
    result["cuda_graphs"] = graph_use
    result["speedup"] = result["hf_generate_s"] / result["ours_s"]
    result["speedup_eager"] = result["hf_generate_s"] / result["ours_eager_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid-budget-s", type=float, default=240.0)
    parser.add_argument("--compare-prompts", type=int, default=64)
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument(
        "--compare-models", default="attn-360m-30b,mamba-130m", help="comma list to compare"
    )
    parser.add_argument(
        "--grid-models", default="", help="comma list of Table 1 models to price (default: all)"
    )
    parser.add_argument(
        "--profile",
        default="",
        help="comma-separated models of the comparison to profile (one run of each side); "
        "transformers' Mamba without its CUDA kernels loops over tokens in Python, millions of "
        "profiler events, so it is better left out",
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("end_to_end needs a CUDA GPU", file=sys.stderr)
        return 2
    device = "cuda"
    report: dict[str, Any] = {"env": environment(device)}
    log(json.dumps(report["env"]))
    failed = False
    if not args.skip_compare:
        report["compare"] = []
        for name in [m for m in args.compare_models.split(",") if m]:
            try:
                profile = name in args.profile.split(",")
                row = compare_generate(name, device, args.compare_prompts, profile)
            except Exception as error:  # noqa: BLE001 - reported; the grid still runs
                failed = True
                row = {"model": name, "error": f"{type(error).__name__}: {error}"[:500]}
            report["compare"].append(row)
            release_memory(device)
            for side in ("ours", "hf_generate"):
                prof = row.get(f"{side}_profile")
                if prof:
                    log(
                        f"profile {name} {side}: wall {prof['wall_s']:.3f} s, GPU busy "
                        f"{prof['gpu_busy_s']:.3f} s, {prof['cpu_ops']} CPU-side events"
                    )
                    log(prof["top_gpu"])
                    log(prof["top_cpu"])
            brief = {k: v for k, v in row.items() if k != "lengths" and not k.endswith("_profile")}
            log(f"compare {name}: " + json.dumps(brief))
    if not args.skip_grid:
        chosen = [m for m in args.grid_models.split(",") if m] or list(TABLE1_MODELS)
        unknown = sorted(set(chosen) - set(TABLE1_MODELS))
        if unknown:
            print(f"--grid-models: {unknown} are not Table 1 models", file=sys.stderr)
            return 2
        report["grid"] = grid_cost(device, args.grid_budget_s, chosen)
        g = report["grid"]
        log(
            f"Table 1 grid: {g['measured_models']} of {len(chosen)} models measured, "
            f"{g['total_gpu_hours_measured']:.2f} H200-hours for them with graphed decoding "
            f"({g['total_gpu_hours_eager_decode']:.2f} with eager steps; "
            f"{g['examples_per_model']} examples per model)"
        )
    write_to_out("end_to_end.json", report)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
