"""The reference for prefix linear attention (JRT-RNN; docs/protocol.md): the causal decoder's
quadratic masked form plus the non-causal encoder state S_enc = sum_j phi(k_enc_j)^T v_enc_j
(z_enc = sum_j phi(k_enc_j)) added to every position's numerator and normaliser. Float64 by
default; every test of the chunked form and the prefix kernel compares with it.
"""

from __future__ import annotations

import torch

from ..linear_attention.naive import causal_scores, check_bhtd, naive_features


def prefix_linear_attention_naive(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    enc_mask: torch.Tensor | None = None,
    eps: float = 0.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """q, k [B, H, T, d], v [B, H, T, Dv] (decoder, causal, keys kept by key_mask [B, T]);
    k_enc [B, H, M, d], v_enc [B, H, M, Dv] (encoder, positions kept by enc_mask [B, M]; None:
    all M) -> [B, H, T, Dv] in ``dtype``."""
    check_bhtd(q=q, k=k, v=v, k_enc=k_enc, v_enc=v_enc)
    phi_q, phi_k, vd = naive_features(q, k, v, key_mask, dtype)
    _, phi_ke, ve = naive_features(k_enc, k_enc, v_enc, enc_mask, dtype)
    state_enc = phi_ke.transpose(-1, -2) @ ve  # [B, H, F, Dv]
    norm_enc = phi_ke.sum(-2)  # [B, H, F]
    scores = causal_scores(phi_q, phi_k)
    num = scores @ vd + phi_q @ state_enc
    den = scores.sum(-1, keepdim=True) + (phi_q * norm_enc.unsqueeze(-2)).sum(-1, keepdim=True)
    return num / (den + eps)
