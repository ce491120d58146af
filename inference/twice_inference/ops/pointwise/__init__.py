"""Elementwise work around the matmuls, fused: the rotary embedding of q and k, and the SwiGLU
MLP's ``value * silu(gate)``. ``rotate_half`` and ``swiglu`` are the dispatch points: a Triton
kernel (``triton_kernel.py``) for 16-bit tensors where ``kernel_mode.kernel_may_run``, else the
PyTorch form, which stays for the CPU, float32 and training, and is what the kernels are checked
against (``tests/test_pointwise.py`` under the Triton interpreter; ``bench.pointwise_check`` on a
GPU).

Why: on an H200 the PyTorch rotary made a float32 copy of the rotated channels, two
concatenations and a cast, several passes over q and k: 2.3 ms a layer at 8 x 8192 for the 360M
models, ~55 ms of Transformer++'s ~201 ms prefill, so a ratio against it flattered the recurrent
models. The SwiGLU's silu and product were two more passes over the MLP's widest activation
(docs/measurements/2026-11-29-h200-window-jrt-state.md and 2026-11-29-h200-rotary-swiglu.md).
The kernels round once, at the end, where the PyTorch form rounds after each 16-bit op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..kernel_mode import kernel_may_run

KERNEL_DTYPES = (torch.bfloat16, torch.float16)
_kernels_allowed = True


@contextmanager
def without_pointwise_kernels() -> Iterator[None]:
    """The PyTorch forms even where a kernel applies, every other kernel left as it is: the
    prefill benchmark's before and after in one process."""
    global _kernels_allowed
    previous, _kernels_allowed = _kernels_allowed, False
    try:
        yield
    finally:
        _kernels_allowed = previous


def _kernel_applies(*tensors: torch.Tensor) -> bool:
    # float32 stays on PyTorch: there the forms already agree and the copies cost least.
    if not _kernels_allowed or any(t.dtype not in KERNEL_DTYPES for t in tensors):
        return False
    return tensors[0].numel() > 0 and kernel_may_run(tensors)


def rotate_half_torch(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, width: int
) -> torch.Tensor:
    """x [..., B, H, T, Dh], cos and sin [B, 1, T, width / 2] float32 -> x with its first
    ``width`` channels rotated as non-interleaved halves (in float32, rounded once to x's
    dtype) and the rest unchanged."""
    half = width // 2
    rot, rest = x[..., :width].float(), x[..., width:]
    x1, x2 = rot[..., :half], rot[..., half:]
    rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)
    return torch.cat([rotated, rest], dim=-1) if rest.shape[-1] else rotated


def rotate_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, width: int) -> torch.Tensor:
    """``rotate_half_torch``'s function and layout (a contiguous result); one kernel pass over x
    where it applies. x is [B, H, T, Dh] or q and k stacked as [S, B, H, T, Dh]."""
    if x.dim() in (4, 5) and _kernel_applies(x):
        from .triton_kernel import rotate  # imports triton: lazily

        stacked = x if x.dim() == 5 else x[None]
        y = rotate(stacked, cos[:, 0], sin[:, 0], width)
        return y if x.dim() == 5 else y[0]
    return rotate_half_torch(x, cos, sin, width)


def swiglu_torch(value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    return value * F.silu(gate)


def swiglu(value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """value * silu(gate), in one kernel pass where it applies."""
    if _kernel_applies(value, gate) and gate.dtype == value.dtype:
        from .triton_kernel import swiglu as kernel  # imports triton: lazily

        return kernel(value, gate)
    return swiglu_torch(value, gate)


__all__ = [
    "rotate_half",
    "rotate_half_torch",
    "swiglu",
    "swiglu_torch",
    "without_pointwise_kernels",
]
