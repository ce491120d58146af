"""Gated linear attention in chunked PyTorch (any device and dtype, computed in float32) and the
one-token step that decoding uses.
"""

from __future__ import annotations

import torch

GLA_CHUNK = 32


def gla_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    S: torch.Tensor,
    chunk: int = GLA_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same function as ``naive.gla_naive``, in float32. Inside a chunk, o_t = sum_{s<=t} (q_t .
    (k_s * exp(cum_t - cum_s))) v_s + (q_t * exp(cum_t)) S_in; the pairwise decay is per key
    channel, so it is formed explicitly (only exp of non-positive numbers, stable for any gate)."""
    q, k, v, g, S = (t.float() for t in (q, k, v, g, S))
    scale = q.shape[-1] ** -0.5
    outs = []
    for start in range(0, q.shape[1], chunk):
        qc = q[:, start : start + chunk] * scale
        kc, vc = k[:, start : start + chunk], v[:, start : start + chunk]
        cum = torch.cumsum(g[:, start : start + chunk], dim=1)  # [B, L, H, K]
        length = qc.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
        diff = cum[:, :, None] - cum[:, None, :]  # [B, L(t), L(s), H, K]
        decay = torch.where(causal[None, :, :, None, None], diff, float("-inf")).exp()
        scores = torch.einsum("bthk,bshk,btshk->bths", qc, kc, decay)
        o_intra = torch.einsum("bths,bshv->bthv", scores, vc)
        o_state = torch.einsum("bthk,bhkv->bthv", qc * cum.exp(), S)
        outs.append(o_intra + o_state)
        to_end = (cum[:, -1:] - cum).exp()  # [B, L, H, K]
        S = cum[:, -1].exp()[..., None] * S + torch.einsum("bshk,bshv->bhkv", kc * to_end, vc)
    o = torch.cat(outs, dim=1) if outs else v.new_zeros(v.shape)
    return o, S


def gla_step(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, S: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token: q, k, g [B, H, K]; v [B, H, V]; S [B, H, K, V] float32 -> (o [B, H, V]
    float32, next S)."""
    S = g.float().exp()[..., None] * S + k.float()[..., None] * v.float()[..., None, :]
    o = torch.einsum("bhk,bhkv->bhv", q.float() * q.shape[-1] ** -0.5, S)
    return o, S
