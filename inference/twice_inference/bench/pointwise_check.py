"""GPU checks and timings for the fused rotary and SwiGLU kernels (``ops.pointwise``).

    python -m twice_inference.bench.pointwise_check [--batch 8] [--length 8192]

1. Rotary, kernel and PyTorch form against float64 (exact angles): q and k stacked as views of
   one qkv projection, as ``Attention`` passes them; head dims 16 to 112 with full and partial
   (odd configured dims) rotation, a left-padded row, one-token decode steps at far positions,
   bf16 and fp16. Per shape: the share of elements bitwise equal between the two forms, the
   largest difference between them, and each form's largest error against float64.
2. SwiGLU, kernel and PyTorch form against float32 (one rounding of it is the best a 16-bit
   output can be): the share equal to that rounding and the largest errors.
3. Whole models (the three 360M families, random weights, bf16, 2 x 4096): prefill logits and
   two decode steps with the kernels vs without (``without_pointwise_kernels``), and each
   against the float32 model.
4. Timings (``triton.testing.do_bench`` medians) at batch x length, 360M shapes: the rotary of
   q and k and the SwiGLU's elementwise part, PyTorch form vs kernel.

Needs a CUDA GPU; writes $OUT/pointwise_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

from ..models.layers import Rotary, positions_from_mask, swiglu_hidden_default
from ..ops.pointwise import swiglu, swiglu_torch, without_pointwise_kernels
from .model_common import (
    environment,
    log,
    write_to_out,
)
from .window_check import bench, compare_models

# (batch, heads, length, head dim, configured rotary dim, dtype)
ROTARY_SHAPES: list[tuple[int, int, int, int, int, torch.dtype]] = [
    (8, 16, 8192, 64, 64, torch.bfloat16),  # the 360M Transformer++
    (2, 16, 2048, 64, 32, torch.bfloat16),
    (2, 24, 2048, 70, 35, torch.bfloat16),  # the 1.3B Transformer++: 36 of 70 channels
    (1, 16, 2048, 112, 112, torch.bfloat16),  # the 1B Based / JRT-RNN window layers
    (2, 4, 300, 16, 7, torch.bfloat16),
    (2, 16, 2048, 64, 64, torch.float16),
    (8, 16, 1, 64, 64, torch.bfloat16),  # decode steps
    (3, 24, 1, 70, 35, torch.float16),
]


def rotary_float64(x: torch.Tensor, positions: torch.Tensor, dim: int) -> torch.Tensor:
    """The rotation with float64 frequencies and angles, from the formula."""
    width = 2 * ((dim + 1) // 2)
    half = width // 2
    inv = 10000.0 ** -(torch.arange(0, dim, 2, dtype=torch.float64, device=x.device) / dim)
    angles = positions.double()[:, None, :, None] * inv
    cos, sin = angles.cos(), angles.sin()
    x = x.double()
    x1, x2 = x[..., :half], x[..., half:width]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, x[..., width:]], dim=-1)


def check_rotary(gen: torch.Generator) -> list[dict[str, Any]]:
    rows = []
    for b, h, t, dh, dim, dtype in ROTARY_SHAPES:
        qkv = torch.randn(b, t, 3, h, dh, device="cuda", generator=gen).to(dtype)
        qk = qkv.permute(2, 0, 3, 1, 4)[:2]
        mask = torch.ones(b, t, dtype=torch.bool, device="cuda")
        if t > 1:
            mask[-1, : t // 3] = False  # the last row left-padded
            positions = positions_from_mask(mask)
        else:
            positions = torch.linspace(0, 16383, b, device="cuda").long()[:, None]
        rotary = Rotary(dim)
        with torch.inference_mode():
            new = rotary(qk, positions)
            with without_pointwise_kernels():
                old = rotary(qk, positions)
        exact = rotary_float64(qk, positions, dim)
        real = mask[None, :, None, :, None].expand_as(new)  # pads' values are never read
        row = {
            "shape": [2, b, h, t, dh],
            "rotary_dim": dim,
            "dtype": str(dtype).split(".")[-1],
            "bitwise_equal_share": float((new == old)[real].float().mean()),
            "max_abs_new_vs_old": float((new.double() - old.double())[real].abs().max()),
            "max_abs_new_vs_float64": float((new.double() - exact)[real].abs().max()),
            "max_abs_old_vs_float64": float((old.double() - exact)[real].abs().max()),
            "finite": bool(new.isfinite().all()),
        }
        rows.append(row)
        log("rotary " + json.dumps(row))
        del qkv, qk, new, old, exact
    return rows


def check_swiglu(gen: torch.Generator) -> list[dict[str, Any]]:
    rows = []
    for shape, dtype in [((2, 4096, 2816), torch.bfloat16), ((2, 1000, 300), torch.float16)]:
        projected = torch.randn(*shape[:-1], 2 * shape[-1], device="cuda", generator=gen)
        value, gate = projected.to(dtype).chunk(2, dim=-1)
        with torch.inference_mode():
            new = swiglu(value, gate)
            with without_pointwise_kernels():
                old = swiglu(value, gate)
        exact = swiglu_torch(value.float(), gate.float())
        row = {
            "shape": list(shape),
            "dtype": str(dtype).split(".")[-1],
            "new_equals_rounded_float32_share": float((new == exact.to(dtype)).float().mean()),
            "old_equals_rounded_float32_share": float((old == exact.to(dtype)).float().mean()),
            "max_rel_new_vs_float32": float(
                ((new.float() - exact).abs() / exact.abs().clamp(min=1e-3)).max()
            ),
            "max_rel_old_vs_float32": float(
                ((old.float() - exact).abs() / exact.abs().clamp(min=1e-3)).max()
            ),
        }
        rows.append(row)
        log("swiglu " + json.dumps(row))
    return rows


def check_models() -> list[dict[str, Any]]:
    return compare_models(["transformer", "based", "jrt_rnn"], without_pointwise_kernels, False)


def time_ops(batch: int, length: int, gen: torch.Generator) -> dict[str, Any]:
    """The 360M models' shapes: heads 16 x 64 (rotary on all 64), MLP hidden for d_model 1024."""
    qkv = torch.randn(batch, length, 3, 16, 64, device="cuda", generator=gen).bfloat16()
    qk = qkv.permute(2, 0, 3, 1, 4)[:2]
    positions = torch.arange(length, device="cuda")[None].expand(batch, length)
    rotary = Rotary(64)
    hidden = swiglu_hidden_default(1024)
    projected = torch.randn(batch, length, 2 * hidden, device="cuda", generator=gen).bfloat16()
    value, gate = projected.chunk(2, dim=-1)
    out: dict[str, Any] = {"batch": batch, "length": length, "mlp_hidden": hidden}
    with torch.inference_mode():
        out["rotary_kernel_ms"] = bench(lambda: rotary(qk, positions))
        out["swiglu_kernel_ms"] = bench(lambda: swiglu(value, gate))
        with without_pointwise_kernels():
            out["rotary_pytorch_ms"] = bench(lambda: rotary(qk, positions))
            out["swiglu_pytorch_ms"] = bench(lambda: swiglu(value, gate))
    log("timings " + json.dumps(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=8192)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench.pointwise_check needs a CUDA GPU", file=sys.stderr)
        return 2
    gen = torch.Generator(device="cuda").manual_seed(1)
    report: dict[str, Any] = {"env": environment("cuda")}
    log(json.dumps(report["env"]))
    report["rotary"] = check_rotary(gen)
    report["swiglu"] = check_swiglu(gen)
    report["models"] = check_models()
    report["timings"] = time_ops(args.batch, args.length, gen)
    write_to_out("pointwise_check.json", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
