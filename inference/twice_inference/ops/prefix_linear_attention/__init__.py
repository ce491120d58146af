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
    enc_mask: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """Parallel PLA. q, k [B, H, T, d] (before the feature map), v [B, H, T, Dv] (decoder);
    k_enc [B, H, Te, d], v_enc [B, H, Te, Dv] (encoder); key_mask [B, T] (real tokens) or None;
    enc_mask [B, Te] (the encoder region), or None when it is every column of k_enc for every
    row -> y [B, H, T, Dv]: float32 from the PyTorch form, the inputs' bf16 from the kernel (its
    result is rounded to bf16 already; widening it cost two passes before the output
    projection rounds it again)."""
    if taylor_kernel_applies((q, k, v, k_enc, v_enc), key_mask, eps):
        m = k_enc.shape[2] if enc_mask is None else encoder_prefix_length(enc_mask)
        if m:
            from ...kernels.taylor_prefill import prefix_prefill as prefix_kernel

            # The decoder runs over every position (encoder region included), as here; the kernel
            # folds sum_{j<M} phi(k_e)^T v_e (and its normaliser) in before the first one.
            return prefix_kernel(q, k, v, k_enc[:, :, :m], v_enc[:, :, :m])
    return prefix_linear_attention_torch(q, k, v, k_enc, v_enc, key_mask, enc_mask, eps)


__all__ = [
    "encoder_mask",
    "encoder_state",
    "prefix_linear_attention",
    "prefix_linear_attention_torch",
]
