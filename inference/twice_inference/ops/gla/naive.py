"""The reference for gated linear attention (GLA, per-key-channel data-dependent decay): the
recurrence one step at a time, computed in float64 by default. The chunked PyTorch form, fla's
kernel and the model's slow path are tested against it.
"""

from __future__ import annotations

import torch


def gla_naive(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    S: torch.Tensor,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,  o_t = (q_t / sqrt(K)) S_t, in ``dtype``.

    q, k, g [B, T, H, K] (g = log decay <= 0); v [B, T, H, V]; S [B, H, K, V] -> (o, S_T).
    """
    q, k, v, g, S = (t.to(dtype) for t in (q, k, v, g, S))
    scale = q.shape[-1] ** -0.5
    outs = []
    for t in range(q.shape[1]):
        S = g[:, t].exp()[..., None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    o = torch.stack(outs, dim=1) if outs else v.new_zeros(v.shape)
    return o, S
