"""GPU checks and part timings for the fast paths of the window and JRT-RNN layers:
sliding-window attention on fla's flash kernel (``ops.window_attention``) and the decode state
from the segment-state kernel (``kernels.taylor_decode_state``).

    python -m twice_inference.bench.window_check [--batch 8] [--length 8192]

1. Window attention, fla vs float64: each shape (head dims 16 to 128, windows 1 to 1000, lengths
   around and past the window, bf16 and fp16) through the flash path and the PyTorch form,
   both against ``masked_causal_attention_dense`` in float64: ||out - ref|| / ||ref||, and the
   output checked finite.
2. The decode state, kernel vs float64 (``linear_attention_state_naive``).
3. Whole models (jrt-360m-30b and based-360m-30b, random weights, bf16): prefill logits, the
   decode state and two decode steps with the new paths vs the old ones (the flash window and
   the state kernel switched off), and each against the float32 model, the precision floor.
4. Timings (``triton.testing.do_bench`` medians) at batch x length: the window op and the state
   op alone, old vs new; then the parts of one sliding-window layer and one JRT-RNN linear
   attention layer (projections, op, states, output), old vs new, and the layer's kernels under
   torch.profiler.

Needs a CUDA GPU and fla; writes $OUT/window_check.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..models import layers
from ..models.jrt_rnn import PrefixLinearAttention
from ..models.transformer import Attention
from ..ops import linear_attention
from ..ops.linear_attention.naive import linear_attention_state_naive
from ..ops.prefix_linear_attention import encoder_mask, prefix_linear_attention
from ..ops.window_attention import flash_window_applies, flash_window_attention
from .model_common import (
    build_random,
    environment,
    family_configs,
    log,
    release_memory,
    write_to_out,
)

# (batch, heads, length, head dim, window, dtype)
WINDOW_SHAPES: list[tuple[int, int, int, int, int, torch.dtype]] = [
    (2, 4, 1, 64, 128, torch.bfloat16),
    (2, 4, 128, 64, 128, torch.bfloat16),
    (2, 4, 129, 64, 128, torch.bfloat16),
    (2, 4, 130, 64, 128, torch.bfloat16),
    (2, 16, 1000, 64, 128, torch.bfloat16),
    (2, 16, 2048, 64, 128, torch.bfloat16),
    (1, 16, 2048, 112, 128, torch.bfloat16),  # the 1B Based / JRT-RNN head dim
    (2, 4, 700, 32, 32, torch.bfloat16),  # the tiny zoo models
    (2, 4, 300, 16, 32, torch.bfloat16),
    (2, 8, 2048, 64, 1, torch.bfloat16),
    (1, 4, 2048, 128, 1000, torch.float16),
]


def rel(actual: torch.Tensor, expected: torch.Tensor) -> float:
    a, e = actual.double(), expected.double()
    return float((a - e).norm() / e.norm().clamp(min=1e-30))


@contextlib.contextmanager
def old_paths() -> Iterator[None]:
    """The paths before this change: the blocked PyTorch window and the float32 state."""
    saved = layers.flash_window_applies, linear_attention.kept_span
    layers.flash_window_applies = lambda *_: False  # type: ignore[assignment]
    linear_attention.kept_span = lambda *_: None  # type: ignore[assignment]
    try:
        yield
    finally:
        layers.flash_window_applies, linear_attention.kept_span = saved


def check_window() -> list[dict[str, Any]]:
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    for b, h, t, d, w, dtype in WINDOW_SHAPES:
        q, k, v = (
            torch.randn(b, h, t, d, device="cuda", generator=gen).to(dtype) for _ in range(3)
        )
        mask = torch.ones(b, t, dtype=torch.bool, device="cuda")
        ref = layers.masked_causal_attention_dense(q.double(), k.double(), v.double(), mask, w)
        assert flash_window_applies(q, k, v), (b, h, t, d, w, dtype)
        new = flash_window_attention(q, k, v, w)
        old = layers.sliding_window_attention(q, k, v, w)
        row = {
            "shape": [b, h, t, d],
            "window": w,
            "dtype": str(dtype),
            "flash_vs_f64": rel(new, ref),
            "pytorch_vs_f64": rel(old, ref),
            "flash_vs_pytorch": rel(new, old),
            "finite": bool(torch.isfinite(new).all()),
        }
        rows.append(row)
        log(
            f"window {row['shape']} w={w} {dtype}: flash {row['flash_vs_f64']:.2e}, "
            f"pytorch {row['pytorch_vs_f64']:.2e} vs float64; finite {row['finite']}"
        )
    return rows


def check_state() -> list[dict[str, Any]]:
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(1)
    for b, h, t, dv in [(2, 16, 8192, 64), (2, 4, 1000, 32), (1, 2, 7, 16)]:
        k = (torch.randn(b, h, t, 16, device="cuda", generator=gen) * 0.5).bfloat16()
        v = torch.randn(b, h, t, dv, device="cuda", generator=gen).bfloat16()
        new = linear_attention.linear_attention_state(k, v, None)
        with old_paths():
            old = linear_attention.linear_attention_state(k, v, None)
        want = linear_attention_state_naive(k, v, None)
        row = {
            "shape": [b, h, t, dv],
            "kernel_s_vs_f64": rel(new.s, want.s),
            "kernel_z_vs_f64": rel(new.z, want.z),
            "float32_s_vs_f64": rel(old.s, want.s),
        }
        rows.append(row)
        figures = ", ".join(f"{key} {value:.2e}" for key, value in row.items() if key != "shape")
        log(f"state {row['shape']}: {figures}")
    return rows


def state_tensors(state: Any) -> list[torch.Tensor]:
    """Every tensor of a DecodeState's layers, in order."""
    out: list[torch.Tensor] = []
    for layer in state.layers:
        if isinstance(layer, torch.Tensor):
            out.append(layer)
        else:
            for name in ("s", "z", "k", "v"):
                value = getattr(layer, name, None)
                if isinstance(value, torch.Tensor):
                    out.append(value)
    return out


def prefill_and_steps(
    model: Any, ids: torch.Tensor, nxt: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Prefill logits, the decode state's tensors (float32 copies) and the logits of a decode
    step for each column of ``nxt``."""
    logits, state = model.prefill(ids, torch.ones_like(ids))
    tensors = [t.float().clone() for t in state_tensors(state)]
    steps = []
    for i in range(nxt.shape[1]):
        step, state = model.step(nxt[:, i], state)
        steps.append(step)
    return logits, tensors, torch.stack(steps)


def compare_models(
    families: list[str], old: Callable[[], contextlib.AbstractContextManager[None]], states: bool
) -> list[dict[str, Any]]:
    """Per family's 360M model (random weights, bf16, 2 x 4096): prefill logits, two decode steps
    and (``states``) the decode state with the new paths vs inside ``old()``, and each against
    the float32 model."""
    rows = []
    for family, name, config in family_configs(families, None):
        model = build_random(family, config, "cuda", torch.bfloat16, 0)
        gen = torch.Generator(device="cuda").manual_seed(2)
        ids = torch.randint(1, model.vocab_size, (2, 4096), device="cuda", generator=gen)
        nxt = torch.randint(1, model.vocab_size, (2, 2), device="cuda", generator=gen)

        with torch.inference_mode():
            new = prefill_and_steps(model, ids, nxt)
            with old():
                before = prefill_and_steps(model, ids, nxt)
            exact = prefill_and_steps(model.float(), ids, nxt)
        row: dict[str, Any] = {
            "model": name,
            "logits_new_vs_old": rel(new[0], before[0]),
            "steps_new_vs_old": rel(new[2], before[2]),
        }
        if states:
            row["state_new_vs_old_max"] = max(
                rel(a, b) for a, b in zip(new[1], before[1], strict=True)
            )
        row.update(
            {
                "logits_old_vs_float32": rel(before[0], exact[0]),
                "logits_new_vs_float32": rel(new[0], exact[0]),
                "steps_old_vs_float32": rel(before[2], exact[2]),
                "steps_new_vs_float32": rel(new[2], exact[2]),
            }
        )
        rows.append(row)
        log(f"model {name}: " + ", ".join(f"{k} {v:.2e}" for k, v in row.items() if k != "model"))
        del model
        release_memory("cuda")
    return rows


def check_models() -> list[dict[str, Any]]:
    return compare_models(["jrt_rnn", "based"], old_paths, states=True)


def bench(fn: Callable[[], Any]) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median"))


def time_ops(batch: int, length: int, gen: torch.Generator) -> dict[str, Any]:
    """The window op and the decode-state op alone, old vs new."""
    out: dict[str, Any] = {}
    q, k, v = (
        torch.randn(batch, 16, length, 64, device="cuda", generator=gen).bfloat16()
        for _ in range(3)
    )
    out["window op [B,16,T,64] w=128"] = {
        "old": bench(lambda: layers.sliding_window_attention(q, k, v, 128)),
        "new": bench(lambda: flash_window_attention(q, k, v, 128)),
    }
    ks = (torch.randn(batch, 16, length, 16, device="cuda", generator=gen) * 0.5).bfloat16()
    out["decode state op [B,16,T,16|64]"] = {
        "new": bench(lambda: linear_attention.linear_attention_state(ks, v, None)),
    }
    with old_paths():
        out["decode state op [B,16,T,16|64]"]["old"] = bench(
            lambda: linear_attention.linear_attention_state(ks, v, None)
        )
    return out


def time_parts(batch: int, length: int) -> dict[str, Any]:
    gen = torch.Generator(device="cuda").manual_seed(3)
    out = time_ops(batch, length, gen)
    family, name, config = next(iter(family_configs(["jrt_rnn"], None)))
    model = build_random(family, config, "cuda", torch.bfloat16, 0)
    swa = next(m for m in model.modules() if isinstance(m, Attention) and m.window is not None)
    pla = next(m for m in model.modules() if isinstance(m, PrefixLinearAttention))
    x = torch.randn(batch, length, model.d_model, device="cuda", generator=gen).bfloat16()
    mask = torch.ones(batch, length, dtype=torch.bool, device="cuda")
    positions = layers.positions_from_mask(mask)
    # A Transformer++ 360M layer (full causal attention, same width and heads): its parts show
    # what the baseline pays for the same rotary and for masking its whole KV cache.
    full = Attention(model.d_model, swa.n_heads, swa.head_dim, 10000.0).to("cuda", torch.bfloat16)
    keep = mask[:, None, :, None].to(torch.bfloat16)
    with torch.inference_mode():
        sq, sk, sv = swa._qkv(x, positions)
        qkv = swa.Wqkv(x).view(batch, length, 3, swa.n_heads, swa.head_dim).permute(2, 0, 3, 1, 4)
        sy = layers.masked_causal_attention(sq, sk, sv, mask, swa.window)
        lq, lk, lv = pla._qkv(x)
        ke = pla._split(x, pla.proj_k_enc, pla.feature_dim)
        ve = pla._split(x, pla.proj_v_enc, pla.value_dim)
        em = encoder_mask(mask, pla.encoder_length)
        ly = prefix_linear_attention(lq, lk, lv, ke, ve, mask, em, pla.eps)
        parts: dict[str, Callable[[], Any]] = {
            "window layer: projection + rotary": lambda: swa._qkv(x, positions),
            "window layer: attention op": lambda: layers.masked_causal_attention(
                sq, sk, sv, mask, swa.window
            ),
            "window layer: output projection": lambda: swa._merge(sy),
            "window layer: whole prefill": lambda: swa.prefill(x, mask, positions),
            "rotary alone (q and k)": lambda: swa.rotary(qkv[:2], positions),
            "full-attention layer: causal SDPA op": lambda: layers.causal_attention(sq, sk, sv),
            "full-attention layer: KV cache masking": lambda: (sk * keep, sv * keep),
            "full-attention layer: whole prefill": lambda: full.prefill(x, mask, positions),
            "JRT layer: projections q,k,v,k_enc,v_enc": lambda: (
                pla._qkv(x),
                pla._split(x, pla.proj_k_enc, pla.feature_dim),
                pla._split(x, pla.proj_v_enc, pla.value_dim),
            ),
            "JRT layer: prefix op (Taylor kernel)": lambda: prefix_linear_attention(
                lq, lk, lv, ke, ve, mask, em, pla.eps
            ),
            "JRT layer: encoder state": lambda: linear_attention.linear_attention_state(ke, ve, em),
            "JRT layer: decoder state": lambda: linear_attention.linear_attention_state(
                lk, lv, mask
            ),
            "JRT layer: output projection": lambda: pla._out(ly, x),
            "JRT layer: whole prefill": lambda: pla.prefill(x, mask, positions),
        }
        for part, fn in parts.items():
            new = bench(fn)
            with old_paths():
                old = bench(fn)
            out[part] = {"old": old, "new": new}
        from torch.profiler import ProfilerActivity, profile

        tables = {}
        for label, ctx in (("old", old_paths), ("new", contextlib.nullcontext)):
            with ctx():
                pla.prefill(x, mask, positions)
                torch.cuda.synchronize()
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    pla.prefill(x, mask, positions)
                    torch.cuda.synchronize()
            kernels = sorted(
                (e for e in prof.key_averages() if e.self_device_time_total > 0),
                key=lambda e: -e.self_device_time_total,
            )
            tables[label] = [
                {"kernel": e.key[:110], "ms": e.self_device_time_total / 1e3, "calls": e.count}
                for e in kernels[:15]
            ]
    out["JRT layer kernels"] = tables
    for part, times in out.items():
        if part == "JRT layer kernels":
            continue
        log(f"{part:46s} old {times['old']:8.3f} ms  new {times['new']:8.3f} ms")
    for label, table in tables.items():
        log(f"JRT linear-attention layer prefill, {label} paths, kernels by GPU time:")
        for row in table:
            log(f"    {row['ms']:8.3f} ms {row['calls']:5d}x  {row['kernel']}")
    del model
    release_memory("cuda")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=8192)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench.window_check needs a CUDA GPU", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"env": environment("cuda")}
    log(json.dumps(report["env"]))
    report["window"] = check_window()
    report["state"] = check_state()
    report["models"] = check_models()
    report["timings_ms"] = time_parts(args.batch, args.length)
    write_to_out("window_check.json", report)
    bad = [r for r in report["window"] if not r["finite"] or r["flash_vs_f64"] > 2e-2]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
