"""Sliding-window softmax attention on a flash kernel: flash-linear-attention's
``fla.ops.attn.parallel_attn`` (a maintained Triton kernel, forward only here), which
``models.layers.masked_causal_attention`` dispatches to for unpadded prompts where
``flash_window_applies``. The PyTorch form (``layers.sliding_window_attention``: SDPA over
[w, 2w] blocks under an explicit band mask) stays for the CPU, other dtypes and shapes, and is
what this is checked against: on a GPU by ``bench.window_check`` (both against float64), on the
CPU under the Triton interpreter by ``tests/test_kernel_dispatch.py``.

Why: the band mask rules out SDPA's flash and cuDNN backends, and the blocks are copies; the
five window layers of a 360M Based or JRT-RNN took ~28 ms of a ~165-200 ms prefill at 8 x 8192
on an H200 (docs/measurements/2026-11-29-h200-model-speed.md).

fla's window means something else than ours. Ours (``layers.masked_causal_attention``): query i
sees keys i-w..i, so w + 1 keys with itself. fla's ``window_size`` W: keys i-W+1..i, so W keys.
So ours with w is fla's with W = w + 1. Its scale defaults to 1/sqrt(head dim), as SDPA's does;
it is passed explicitly anyway. fla wants [B, T, H, D] and returns that layout, which is also the
one ``Attention._merge`` flattens, so the output's transpose back to [B, H, T, D] is a view that
the merge turns into a plain reshape.
"""

from __future__ import annotations

import math

import torch

from .kernel_mode import fla_available, kernel_may_run

# fla loads a head's whole dim as one tile of at most 256 (it asserts a single block); a
# tensor-core dot needs at least 16.
FLASH_MIN_HEAD_DIM = 16
FLASH_MAX_HEAD_DIM = 256
FLASH_DTYPES = (torch.bfloat16, torch.float16)


def flash_window_applies(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """True when fla's kernel computes what the PyTorch form does (to 16-bit rounding): CUDA
    tensors (CPU ones too in the "interpreter" mode of ``kernel_mode``), bf16 or fp16 (a float32
    dot in Triton is tf32, so float32 stays on PyTorch), one head dim for q, k and v within fla's
    tile, equal head counts, and fla importable. Padding is the caller's to rule out (the kernel
    has no key mask)."""
    if q.dtype not in FLASH_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        return False
    d = q.shape[-1]
    if k.shape[-1] != d or v.shape[-1] != d or not FLASH_MIN_HEAD_DIM <= d <= FLASH_MAX_HEAD_DIM:
        return False
    if q.shape[:-1] != k.shape[:-1] or k.shape != v.shape or q.shape[-2] == 0:
        return False
    return fla_available() and kernel_may_run((q, k, v))


def flash_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int
) -> torch.Tensor:
    """q, k, v [B, H, T, Dh] -> [B, H, T, Dh] (a transposed view of fla's [B, T, H, Dh] output):
    query i over keys i-window..i, no padding."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    from fla.ops.attn import parallel_attn  # imports triton and fla: lazily

    out = parallel_attn(
        q.transpose(1, 2),
        k.transpose(1, 2),
        v.transpose(1, 2),
        scale=1.0 / math.sqrt(q.shape[-1]),
        window_size=window + 1,
    )
    return out.transpose(1, 2)
