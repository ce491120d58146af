"""Where a prefill's GPU time goes, part by part, for the 360M Transformer++, Based and JRT-RNN.

    python -m twice_inference.bench.prefill_profile [--families transformer,based,jrt_rnn]
        [--batch 8] [--lengths 8192,16384] [--profile-length 8192] [--decay-baseline]
        [--pointwise-baseline]

Per family (random weights, bf16, the smallest paper model of ``bench.model_common``):
- prefill time at each length (median of 5 after 2 warm-ups, CUDA events) and tokens/s, all in
  one process so the ratios share the card and its clocks;
- at ``--profile-length``, the GPU time of each part of the model: CUDA events around every
  module of a kind (norms, MLPs, the linear-attention mixers, the BaseConv blocks and the short
  convolution where it runs as its own module, full and sliding-window attention, embedding),
  summed over layers; the rest (the head, residual adds) is the total less the parts. The
  stream runs kernels in order, so an interval is the GPU time of the kernels launched in it
  (plus any gap where the GPU waited on the host, which a prefill of this size has little of);
  a nested part (the short conv inside Mamba's mixer) is listed under its parent;
- with ``--decay-baseline``, Based's prefill also timed with its decayed linear attention on the
  PyTorch form (``ops.linear_attention.decayed.without_decay_kernel``): before and after the
  kernel in one process;
- with ``--pointwise-baseline``, every model's prefill also timed with the rotary and the SwiGLU
  on their PyTorch forms (``ops.pointwise.without_pointwise_kernels``), and the ratios to
  Transformer++ printed both ways: before and after the fused kernels in one process;
- one prefill under torch.profiler: the kernels with the most GPU time, to split a part into
  the kernels it runs (Taylor kernel vs feature map vs elementwise work).

Needs a CUDA GPU; writes $OUT/prefill_profile.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from typing import Any

import torch
from torch import nn

from ..models.based import BaseConv
from ..models.layers import Mixer, RMSNorm, ShortConv, SwiGLU
from ..models.transformer import Attention
from ..ops.linear_attention.decayed import without_decay_kernel
from ..ops.pointwise import without_pointwise_kernels
from .model_common import (
    build_random,
    environment,
    family_configs,
    log,
    release_memory,
    time_once,
    write_to_out,
)


def part_of(module: nn.Module) -> str | None:
    """The part a module's time is booked to, or None for modules not timed on their own."""
    if isinstance(module, Attention):
        return "attention" if module.window is None else "sliding-window attention"
    if isinstance(module, BaseConv):
        return "BaseConv block (projections + short conv + silu gate)"
    if isinstance(module, ShortConv):
        return "  of which short conv"
    if isinstance(module, SwiGLU):
        return "MLP (SwiGLU)"
    if isinstance(module, RMSNorm):
        return "RMSNorm"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if type(module).__name__ in (
        "LinearAttention",
        "PrefixLinearAttention",
        "DecayedLinearAttention",
    ):
        return "linear attention (projections + feature map + kernel)"
    return None


class PartTimer:
    """CUDA events around every module of a part: forward hooks for modules called as such, and
    a wrapper around the mixers' ``prefill`` (the model calls that method, which hooks miss)."""

    def __init__(self, model: nn.Module) -> None:
        self.events: dict[str, list[tuple[torch.cuda.Event, torch.cuda.Event]]] = defaultdict(list)
        self._open: dict[int, torch.cuda.Event] = {}
        self._handles = []
        self._wrapped: list[nn.Module] = []
        for module in model.modules():
            part = part_of(module)
            if part is None:
                continue
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post(part)))
            if callable(getattr(module, "prefill", None)) and isinstance(module, Mixer):
                module.prefill = self._timed(part, module.prefill)  # type: ignore[method-assign]
                self._wrapped.append(module)

    def _timed(self, part: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn(*args, **kwargs)
            end.record()
            self.events[part].append((start, end))
            return out

        return run

    def _pre(self, module: nn.Module, _args: Any) -> None:
        start = torch.cuda.Event(enable_timing=True)
        start.record()
        self._open[id(module)] = start

    def _post(self, part: str):
        def hook(module: nn.Module, _args: Any, _out: Any) -> None:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.events[part].append((self._open.pop(id(module)), end))

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        for module in self._wrapped:
            del module.prefill  # the instance attribute: the class's method shows again

    def milliseconds(self) -> dict[str, float]:
        torch.cuda.synchronize()
        return {
            part: sum(s.elapsed_time(e) for s, e in pairs) for part, pairs in self.events.items()
        }


def timed_ms(model: nn.Module, ids: torch.Tensor) -> float:
    run = lambda: model.prefill(ids, torch.ones_like(ids))  # noqa: E731
    for _ in range(2):
        run()
    return 1e3 * statistics.median(time_once(run, "cuda") for _ in range(5))


def profile_family(model: nn.Module, ids: torch.Tensor) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    mask = torch.ones_like(ids)
    timer = PartTimer(model)
    try:
        total = 1e3 * time_once(lambda: model.prefill(ids, mask), "cuda")
        parts = timer.milliseconds()
    finally:
        timer.remove()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        model.prefill(ids, mask)
        torch.cuda.synchronize()
    kernels = sorted(
        (e for e in prof.key_averages() if e.self_device_time_total > 0),
        key=lambda e: -e.self_device_time_total,
    )
    gpu_ms = sum(e.self_device_time_total for e in kernels) / 1e3
    top = [
        {"kernel": e.key[:120], "ms": e.self_device_time_total / 1e3, "calls": e.count}
        for e in kernels[:25]
    ]
    return {"hooked_total_ms": total, "parts_ms": parts, "profiler_gpu_ms": gpu_ms, "kernels": top}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", default="transformer,based,jrt_rnn")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", default="8192,16384")
    parser.add_argument("--profile-length", type=int, default=8192)
    parser.add_argument(
        "--decay-baseline",
        action="store_true",
        help="also time Based with its decayed linear attention on the PyTorch form (before the "
        "kernel), in the same process",
    )
    parser.add_argument(
        "--pointwise-baseline",
        action="store_true",
        help="also time every model with the rotary and SwiGLU on their PyTorch forms (before "
        "the fused kernels), in the same process",
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench.prefill_profile needs a CUDA GPU", file=sys.stderr)
        return 2
    lengths = [int(n) for n in args.lengths.split(",") if n.strip()]
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    report: dict[str, Any] = {"env": environment("cuda"), "batch": args.batch, "rows": []}
    log(json.dumps(report["env"]))
    for family, name, config in family_configs(families, None):
        model = build_random(family, config, "cuda", torch.bfloat16, 0)
        row: dict[str, Any] = {"family": family, "model": name, "ms": {}, "tokens_per_s": {}}
        gen = torch.Generator(device="cuda").manual_seed(1)
        with torch.inference_mode():
            for n in lengths:
                ids = torch.randint(
                    1, model.vocab_size, (args.batch, n), device="cuda", generator=gen
                )
                row["ms"][n] = timed_ms(model, ids)
                row["tokens_per_s"][n] = args.batch * n / row["ms"][n] * 1e3
                log(
                    f"{name} {args.batch}x{n}: {row['ms'][n]:.1f} ms, "
                    f"{row['tokens_per_s'][n]:,.0f} tok/s"
                )
                if args.decay_baseline and family == "based":
                    with without_decay_kernel():
                        before = timed_ms(model, ids)
                    row.setdefault("ms_decay_pytorch", {})[n] = before
                    log(f"{name} {args.batch}x{n}, decayed attention on PyTorch: {before:.1f} ms")
                if args.pointwise_baseline:
                    with without_pointwise_kernels():
                        before = timed_ms(model, ids)
                    row.setdefault("ms_pointwise_pytorch", {})[n] = before
                    log(f"{name} {args.batch}x{n}, rotary and SwiGLU on PyTorch: {before:.1f} ms")
            ids = torch.randint(
                1, model.vocab_size, (args.batch, args.profile_length), device="cuda", generator=gen
            )
            row["profile"] = profile_family(model, ids)
        prof = row["profile"]
        log(
            f"{name} at {args.batch}x{args.profile_length}: hooked prefill "
            f"{prof['hooked_total_ms']:.1f} ms, "
            f"profiler kernel time {prof['profiler_gpu_ms']:.1f} ms"
        )
        for part, ms in sorted(prof["parts_ms"].items(), key=lambda kv: -kv[1]):
            log(f"  {part:55s} {ms:8.1f} ms")
        for k in prof["kernels"]:
            log(f"    {k['ms']:8.2f} ms {k['calls']:5d}x  {k['kernel']}")
        report["rows"].append(row)
        del model
        release_memory("cuda")
    base = next((r for r in report["rows"] if r["family"] == "transformer"), None)
    if base is not None:
        for row in report["rows"]:
            ratios = {n: base["ms"][n] / row["ms"][n] for n in lengths}
            row["vs_transformer"] = ratios
            log(
                f"{row['model']}: "
                + ", ".join(f"{r:.2f}x Transformer++ at {n}" for n, r in ratios.items())
            )
            if args.pointwise_baseline:
                # Both models on the PyTorch forms: the ratio as it read before the kernels.
                old = {
                    n: base["ms_pointwise_pytorch"][n] / row["ms_pointwise_pytorch"][n]
                    for n in lengths
                }
                row["vs_transformer_pointwise_pytorch"] = old
                log(
                    f"{row['model']}, rotary and SwiGLU on PyTorch in both: "
                    + ", ".join(f"{r:.2f}x Transformer++ at {n}" for n, r in old.items())
                )
    write_to_out("prefill_profile.json", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
