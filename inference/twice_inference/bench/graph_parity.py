"""Why graphed and eager decoding can pick different tokens: the per-step logits of both paths on
the same batch, fed the same tokens.

    python -m twice_inference.bench.graph_parity [--model attn-360m-30b] [--prompts 64]

``bench.end_to_end`` counts whole generations that differ between CUDA-graph replay and eager
steps; one flipped argmax changes every later token, so that count cannot tell a bug from
rounding. Here both decoders are teacher-forced with the eager run's own greedy tokens, so every
step compares logits of the same inputs:

- bf16 graphed vs bf16 eager (max |diff| per step, argmax flips, and at the first flip the top-2
  gap of each path's logits: rounding flips only near-ties);
- bf16 eager vs a second bf16 eager run (must be 0: eager steps are deterministic);
- each bf16 path against the same weights in float32, eager: if graphed and eager are both
  about as far from float32 as from each other, their difference is bf16 rounding;
- float32 graphed vs float32 eager (rounding then shrinks by ~2^16);
- each op of a layer (projections, norm, attention over the cache, head) run eagerly and
  replayed from a captured graph on the same inputs: bitwise equal, or which one differs.

The weights are ``bench.end_to_end``'s (transformers' initialisation, loaded into ours) and the
prompts its SWDE-length prompts. Needs a CUDA GPU; writes $OUT/graph_parity.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..engine.decode_graph import GraphedDecoder
from ..engine.generate import left_pad, longest_first_batches
from ..models.layers import attend_one
from .end_to_end import BATCH, NEW_TOKENS, compare_prompts, engine_greedy, paired_models
from .model_common import environment, log, write_to_out


def top2_gap(logits: torch.Tensor) -> torch.Tensor:
    """[B, V] -> [B]: top-1 minus top-2 logit (how far a row is from an argmax tie)."""
    top = logits.float().topk(2, dim=-1).values
    return top[:, 0] - top[:, 1]


def step_diffs(reference: Sequence[torch.Tensor], other: Sequence[torch.Tensor]) -> dict[str, Any]:
    """Per-step comparison of two runs' [B, V] logits: max |diff|, rows whose argmax differs, and
    the first such (step, row) with both runs' top-2 gaps there (step 1 is the first decode)."""
    if len(reference) != len(other):
        raise ValueError(f"{len(reference)} steps against {len(other)}")
    max_abs, flips, first = [], [], None
    for step, (ref, oth) in enumerate(zip(reference, other, strict=True), start=1):
        if ref.shape != oth.shape:
            raise ValueError(f"step {step}: shapes {tuple(ref.shape)} and {tuple(oth.shape)}")
        max_abs.append(float((ref.float() - oth.float()).abs().max()))
        flipped = (ref.argmax(-1) != oth.argmax(-1)).nonzero().flatten().tolist()
        flips.append(len(flipped))
        if flipped and first is None:
            row = flipped[0]
            first = {
                "step": step,
                "row": row,
                "max_abs_diff": max_abs[-1],
                "row_abs_diff": float((ref[row].float() - oth[row].float()).abs().max()),
                "top2_gap_reference": float(top2_gap(ref[row : row + 1])[0]),
                "top2_gap_other": float(top2_gap(oth[row : row + 1])[0]),
            }
    return {"max_abs_diff": max_abs, "argmax_flips": flips, "first_flip": first}


def decode_logits(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, graphs: bool, feed: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """The logits of each decode step (float32 copies) when the tokens ``feed[i]`` [B] go in at
    step i + 1, through the engine's own decoder (graphed or not)."""
    device = ids.device
    _, state = model.prefill(ids, mask)
    state = model.reserve_decoding(state, len(feed))
    decoder = GraphedDecoder(model.step, state, device, graphs)
    out = []
    for tokens in feed:
        out.append(decoder(tokens).float().clone())  # a replay overwrites its buffer
    if graphs and device.type == "cuda" and not decoder.graphed:
        raise RuntimeError(f"the step was not captured: {decoder.fallback_reason}")
    return out


def greedy_feed(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, steps: int
) -> list[torch.Tensor]:
    """The eager greedy tokens: the prefill's argmax, then each step's."""
    logits, state = model.prefill(ids, mask)
    state = model.reserve_decoding(state, steps)
    decoder = GraphedDecoder(model.step, state, ids.device, False)
    tokens = [logits.argmax(-1)]
    for _ in range(steps - 1):
        tokens.append(decoder(tokens[-1]).argmax(-1))
    return tokens


def graph_replay_diff(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> float:
    """max |fn(inputs) eagerly - the same call replayed from a captured graph|; 0.0 is bitwise."""
    eager = fn(*inputs).float().clone()
    static = [x.clone() for x in inputs]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn(*static)  # warm-up off the capture, as GraphedDecoder does
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*static)
    graph.replay()
    torch.cuda.synchronize()
    return float((out.float() - eager).abs().max())


def repeat_diff(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor, times: int = 8) -> float:
    """max |fn(inputs) - its first result| over ``times`` eager calls: 0.0 is deterministic."""
    first = fn(*inputs).float().clone()
    return max(float((fn(*inputs).float() - first).abs().max()) for _ in range(times))


def op_diffs(model: Any, batch: int, cache_len: int, prompt_len: int) -> dict[str, Any]:
    """Each op of layer 0 and the head on random inputs: at decoding's shapes (one token per
    row, a cache of ``cache_len`` slots with its front third invalid) eager against replayed
    ("replay") and eager against itself ("repeat"); at the prefill's shapes (``prompt_len``
    tokens, the first third of each row padding) eager against itself ("prefill_repeat")."""
    block = next(iter(model.blocks()))
    mixer = block.mixer
    dtype, device = model.embeddings.weight.dtype, model.embeddings.weight.device
    d, heads, head_dim = model.d_model, mixer.n_heads, mixer.head_dim

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=dtype)

    def key_mask(length: int) -> torch.Tensor:
        valid = torch.ones(batch, length, dtype=torch.bool, device=device)
        valid[:, : length // 3] = False
        return valid

    hidden = block.mlp.fc2.in_features
    valid, pad_mask = key_mask(cache_len), key_mask(prompt_len)
    decode = {
        "norm1": (block.norm1, randn(batch, d)),
        "Wqkv": (mixer.Wqkv, randn(batch, d)),
        "attend_one": (
            lambda a, b, c: attend_one(a, b, c, valid),
            randn(batch, heads, 1, head_dim),
            randn(batch, heads, cache_len, head_dim),
            randn(batch, heads, cache_len, head_dim),
        ),
        "out_proj": (mixer.out_proj, randn(batch, d)),
        "fc1": (block.mlp.fc1, randn(batch, d)),
        "fc2": (block.mlp.fc2, randn(batch, hidden)),
        "lm_head": (lambda a: model.lm_head(a).float(), randn(batch, d)),
        "silu": (F.silu, randn(batch, hidden)),
    }
    report: dict[str, Any] = {
        name: {"replay": graph_replay_diff(fn, *xs), "repeat": repeat_diff(fn, *xs)}
        for name, (fn, *xs) in decode.items()
    }
    positions = torch.arange(prompt_len, device=device).expand(batch, prompt_len)
    prefill = {
        "Wqkv": (mixer.Wqkv, randn(batch, prompt_len, d)),
        "attention": (
            lambda x: mixer(x, pad_mask, positions),
            randn(batch, prompt_len, d),
        ),
        "fc1": (block.mlp.fc1, randn(batch, prompt_len, d)),
        "fc2": (block.mlp.fc2, randn(batch, prompt_len, hidden)),
    }
    for name, (fn, *xs) in prefill.items():
        report.setdefault(name, {})["prefill_repeat"] = repeat_diff(fn, *xs, times=4)
    return report


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first differing token of two generations (None when equal)."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def batch_report(bf16: Any, fp32: Any, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
    steps = NEW_TOKENS - 1
    feed = greedy_feed(bf16, ids, mask, steps)[:steps]
    eager = decode_logits(bf16, ids, mask, False, feed)
    runs = {
        "bf16_graphed_vs_eager": (eager, decode_logits(bf16, ids, mask, True, feed)),
        "bf16_eager_vs_eager_again": (eager, decode_logits(bf16, ids, mask, False, feed)),
    }
    reference = decode_logits(fp32, ids, mask, False, feed)
    runs["fp32_vs_bf16_eager"] = (reference, eager)
    runs["fp32_vs_bf16_graphed"] = (reference, runs["bf16_graphed_vs_eager"][1])
    runs["fp32_graphed_vs_eager"] = (reference, decode_logits(fp32, ids, mask, True, feed))
    report = {name: step_diffs(a, b) for name, (a, b) in runs.items()}
    gaps = torch.stack([top2_gap(x) for x in eager])  # [steps, B]
    report["eager_top2_gap"] = {
        "median": float(gaps.median()),
        "min": float(gaps.min()),
        "below_0.0625": int((gaps < 0.0625).sum()),
        "count": gaps.numel(),
    }
    report["logit_abs_max"] = max(float(x.abs().max()) for x in eager)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="attn-360m-30b")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument(
        "--ops-only", action="store_true", help="only the per-op and whole-prefill checks"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench.graph_parity needs a CUDA GPU", file=sys.stderr)
        return 2
    device = "cuda"
    bf16, hf = paired_models(args.model, device)
    del hf
    fp32 = copy.deepcopy(bf16).float()
    lengths, prompts = compare_prompts(args.prompts)
    report: dict[str, Any] = {"env": environment(device), "model": args.model, "batches": []}
    log(json.dumps(report["env"]))
    batches = list(longest_first_batches(lengths, BATCH))
    with torch.inference_mode():
        for label, model in (("bf16", bf16), ("fp32", fp32)):
            report[f"ops_{label}"] = op_diffs(model, BATCH, 1040, 990)
            ids, mask = left_pad([prompts[i] for i in batches[0]], 0, torch.device(device))
            report[f"ops_{label}"]["whole_prefill"] = {
                "prefill_repeat": repeat_diff(
                    lambda a, m, lm=model: lm.prefill(a, m)[0], ids, mask, times=4
                )
            }
            log(json.dumps({f"ops_{label}": report[f"ops_{label}"]}))
        if args.ops_only:
            write_to_out("graph_parity_ops.json", report)
            return 0
        for index, batch in enumerate(batches):
            ids, mask = left_pad([prompts[i] for i in batch], 0, torch.device(device))
            row = batch_report(bf16, fp32, ids, mask)
            row["rows"], row["width"] = len(batch), ids.shape[1]
            report["batches"].append(row)
            log(json.dumps({"batch": index, **row}))
        generations = [
            [g.tokens for g in engine_greedy(bf16, prompts, graphs).generations]
            for graphs in (True, False, False)
        ]
        for key, other in (("graphed_vs_eager", 0), ("eager_vs_eager_again", 2)):
            divergence = [
                first_divergence(x, y)
                for x, y in zip(generations[other], generations[1], strict=True)
            ]
            report[f"generations_identical_{key}"] = sum(d is None for d in divergence)
            report[f"first_divergent_token_{key}"] = divergence
    write_to_out("graph_parity.json", report)
    log(f"\n{args.model}, {len(prompts)} prompts, batches of {BATCH}, {NEW_TOKENS} new tokens")
    for key in ("graphed_vs_eager", "eager_vs_eager_again"):
        same = report[f"generations_identical_{key}"]
        log(f"generations identical, {key.replace('_', ' ')}: {same} of {len(prompts)}")
    log("| batch | comparison | max abs diff, step 1 / 2 / 5 / last | flips | first flip, gaps |")
    log("|---|---|---|---|---|")
    for index, row in enumerate(report["batches"]):
        for name in (k for k, v in row.items() if isinstance(v, dict) and "max_abs_diff" in v):
            d = row[name]
            m = d["max_abs_diff"]
            f = d["first_flip"]
            flip = (
                "-"
                if f is None
                else (f"{f['step']}, {f['top2_gap_reference']:.4f} / {f['top2_gap_other']:.4f}")
            )
            log(
                f"| {index} | {name} | {m[0]:.3g} / {m[1]:.3g} / {m[4]:.3g} / {m[-1]:.3g} | "
                f"{sum(d['argmax_flips'])} | {flip} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
