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
from .chunk import (
    LinearAttentionState,
    based_linear_attention_torch,
    linear_attention_state,
    linear_attention_step,
)


def based_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """Parallel causal Taylor linear attention. q, k [B, H, T, d] (before the feature map), v
    [B, H, T, Dv], key_mask [B, T] bool or None -> float32 [B, H, T, Dv]."""
    if taylor_kernel_applies((q, k, v), key_mask, eps):
        from ...kernels.taylor_prefill import based_prefill  # imports triton: lazily

        return based_prefill(q, k, v).float()
    return based_linear_attention_torch(q, k, v, key_mask, eps)


__all__ = [
    "LinearAttentionState",
    "based_linear_attention",
    "based_linear_attention_torch",
    "linear_attention_state",
    "linear_attention_step",
]
