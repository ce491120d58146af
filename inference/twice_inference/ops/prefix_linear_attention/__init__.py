"""Prefix linear attention (JRT-RNN). ``prefix_linear_attention`` is the dispatch point: the
prefix kernels (``kernels.taylor_prefill``: CUDA where built and faster, else Triton) where
``kernel_mode.taylor_kernel_applies`` and the encoder region is the same leading M columns of
every row, else the chunked PyTorch form (``chunk``). ``naive`` is the float64 reference both
are tested against.
"""

from __future__ import annotations

import torch

from ..kernel_mode import taylor_kernel_applies
from .chunk import encoder_mask, encoder_prefix_length, encoder_state, prefix_linear_attention_torch


def prefix_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    key_mask: torch.Tensor | None,
    enc_mask: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """Parallel PLA. q, k, k_enc [B, H, T, d] (before the feature map); v, v_enc [B, H, T, Dv];
    key_mask [B, T] (real tokens), enc_mask [B, T] (encoder region) -> float32 [B, H, T, Dv]."""
    if taylor_kernel_applies((q, k, v, k_enc, v_enc), key_mask, eps):
        m = encoder_prefix_length(enc_mask)
        if m is not None:
            from ...kernels.taylor_prefill import prefix_prefill as prefix_kernel

            # The decoder runs over every position (encoder region included), as here; the kernel
            # folds sum_{j<M} phi(k_e)^T v_e (and its normaliser) in before the first one.
            k_e, v_e = k_enc[:, :, :m], v_enc[:, :, :m]
            return prefix_kernel(q, k, v, k_e, v_e).float()
    return prefix_linear_attention_torch(q, k, v, k_enc, v_enc, key_mask, enc_mask, eps)


__all__ = [
    "encoder_mask",
    "encoder_state",
    "prefix_linear_attention",
    "prefix_linear_attention_torch",
]
