"""Causal Taylor linear attention (Based). ``based_linear_attention`` is the dispatch point: the
kernels (``kernels.taylor_prefill``: CUDA where built and faster, else Triton) where
``kernel_mode.taylor_kernel_applies``, else the chunked PyTorch form (``chunk``). ``naive`` is
the float64 reference both are tested against (``tests/test_models_linear.py``,
``tests/test_kernels.py``; dispatch under the Triton interpreter in
``tests/test_kernel_dispatch.py``). ``decayed`` is the same op with based-360m-30b's per-head
decay and output scale (its own Triton kernel, ``kernels.decay_triton``).
"""

from __future__ import annotations

import torch

from ..kernel_mode import taylor_kernel_applies
from ..padding import mask_is_full
from .chunk import (
    STATE_CHUNK,
    LinearAttentionState,
    based_linear_attention_torch,
    linear_attention_step,
)
from .chunk import linear_attention_state as linear_attention_state_torch


def based_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """Parallel causal Taylor linear attention. q, k [B, H, T, d] (before the feature map), v
    [B, H, T, Dv], key_mask [B, T] bool or None -> y [B, H, T, Dv]: float32 from the PyTorch
    form, the inputs' bf16 from the kernel (rounded there already: widening it only cost passes
    before the output projection rounds it again)."""
    if taylor_kernel_applies((q, k, v), key_mask, eps):
        from ...kernels.taylor_prefill import based_prefill  # imports triton: lazily

        return based_prefill(q, k, v)
    return based_linear_attention_torch(q, k, v, key_mask, eps)


def linear_attention_state(
    k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, chunk: int = STATE_CHUNK
) -> LinearAttentionState:
    """The decode state a prompt leaves (``chunk.linear_attention_state``'s function): the
    segment-state kernel (``kernels.taylor_decode_state``) where the Taylor kernels apply and the
    kept positions are one run of columns that every row keeps (an unpadded prompt; JRT-RNN's
    encoder region), else the PyTorch form (summed ``chunk`` tokens at a time)."""
    if taylor_kernel_applies((k, k, v), None, 0.0):
        span = kept_span(key_mask, k.shape[2])
        if span is not None:
            from ...kernels.taylor_decode_state import taylor_decode_state

            start, stop = span
            s, z = taylor_decode_state(k[:, :, start:stop], v[:, :, start:stop])
            return LinearAttentionState(s, z)
    return linear_attention_state_torch(k, v, key_mask, chunk)


def kept_span(key_mask: torch.Tensor | None, length: int) -> tuple[int, int] | None:
    """(start, stop) when the kept positions are columns start..stop-1 of every row (all of them
    for no mask), else None. One device sync: the span is read back with its check."""
    if key_mask is None or mask_is_full(key_mask, ask=False):  # known: no sync
        return (0, length) if length else None
    rows, columns = key_mask.shape
    if columns == 0:
        return None
    index = torch.arange(columns, device=key_mask.device)
    kept = key_mask.any(dim=0)
    start = torch.where(kept, index, columns).min()
    stop = torch.where(kept, index + 1, 0).max()
    # With start and stop the outermost kept columns, every row keeps all of them exactly when
    # the mask holds rows x (stop - start) kept positions.
    whole = key_mask.sum() == rows * (stop - start)
    first, last, ok = torch.stack([start, stop, whole.long()]).tolist()
    return (first, last) if ok and last > first else None


__all__ = [
    "LinearAttentionState",
    "based_linear_attention",
    "based_linear_attention_torch",
    "linear_attention_state",
    "linear_attention_state_torch",
    "linear_attention_step",
]
