"""Triton prefill kernel for prefix linear attention (JRT-RNN, spec 6.1).

Each program first folds the encoder region (k_enc, v_enc over M tokens, non-causal) into its
on-chip state once, then runs the causal Based pass over the decoder from that state, so the
encoder sums reach every position's numerator and denominator. Kernel body: `based_triton`.
Tested under the Triton interpreter in `tests/test_kernels.py`.
"""

from __future__ import annotations

import torch

from twice_inference.kernels.based_triton import launch


def prefix_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    **config: int,
) -> torch.Tensor:
    """q, k: [B, H, N, 16], v: [B, H, N, Dv] (decoder, causal); k_enc: [B, H, M, 16],
    v_enc: [B, H, M, Dv] (encoder, non-causal). All bf16. Returns y [B, H, N, Dv] bf16."""
    return launch(q, k, v, k_enc, v_enc, **config)
