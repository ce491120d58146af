"""The reference for causal Taylor linear attention: the quadratic masked form, written the
obvious way and computed in float64 by default. Every test of the chunked form, the decode state
and the Triton kernels compares with it; the kernel benchmark also times it in float32 as its
"PyTorch" row. Memory is O(T^2) per head: tests and benchmarks only.
"""

from __future__ import annotations

import torch

from ..feature_map import taylor_feature_map
from .chunk import LinearAttentionState


def check_bhtd(**tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.ndim != 4:
            raise ValueError(f"{name} must be [B, H, T, D], got shape {tuple(t.shape)}")


def naive_features(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """phi(q), phi(k), v in ``dtype``, with phi(k) zeroed where key_mask [B, T] is False."""
    phi_q, phi_k = taylor_feature_map(q.to(dtype)), taylor_feature_map(k.to(dtype))
    if key_mask is not None:
        phi_k = phi_k * key_mask[:, None, :, None].to(dtype)
    return phi_q, phi_k, v.to(dtype)


def causal_scores(phi_q: torch.Tensor, phi_k: torch.Tensor) -> torch.Tensor:
    """phi(q_i) . phi(k_j) for j <= i, zero above the diagonal: [B, H, T, T]."""
    scores = phi_q @ phi_k.transpose(-1, -2)
    t = scores.shape[-1]
    future = torch.ones(t, t, dtype=torch.bool, device=scores.device).triu_(1)
    return scores.masked_fill(future, 0.0)


def based_linear_attention_naive(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    eps: float = 0.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """y_i = sum_{j<=i} phi(q_i).phi(k_j) v_j / (sum_{j<=i} phi(q_i).phi(k_j) + eps), over the keys
    key_mask keeps. q, k [B, H, T, d]; v [B, H, T, Dv] -> [B, H, T, Dv] in ``dtype``."""
    check_bhtd(q=q, k=k, v=v)
    phi_q, phi_k, vd = naive_features(q, k, v, key_mask, dtype)
    scores = causal_scores(phi_q, phi_k)
    return (scores @ vd) / (scores.sum(-1, keepdim=True) + eps)


def linear_attention_state_naive(
    k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
) -> LinearAttentionState:
    """The decode state in one float64 sum over the whole prompt: s = sum phi(k)^T v, z = sum
    phi(k), over the positions key_mask keeps."""
    _, phi_k, vd = naive_features(k, k, v, key_mask, torch.float64)
    return LinearAttentionState(torch.einsum("bhtf,bhtd->bhfd", phi_k, vd), phi_k.sum(dim=2))


def decayed_linear_attention_naive(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_gamma: torch.Tensor,
    scale: torch.Tensor | None,
    key_mask: torch.Tensor | None = None,
    eps: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decayed form (``decayed.py``) in float64, quadratic: y_i = scale_i sum_{j<=i}
    gamma^(i-j) s_ij v_j / sum_{j<=i} s_ij with s_ij = phi(q_i).phi(k_j); and the state the prompt
    leaves, s = sum_j gamma^(T-1-j) phi(k_j)^T v_j, z = sum_j phi(k_j). q, k [B, H, T, d], v
    [B, H, T, Dv], log_gamma [H], scale [B, H, T] or None -> (y, s, z)."""
    check_bhtd(q=q, k=k, v=v)
    phi_q, phi_k, vd = naive_features(q, k, v, key_mask, torch.float64)
    scores = causal_scores(phi_q, phi_k)
    t = q.shape[2]
    pos = torch.arange(t, device=q.device, dtype=torch.float64)
    lg = log_gamma.to(device=q.device, dtype=torch.float64)[:, None, None]
    gap = (pos[:, None] - pos[None, :]).clamp(min=0)
    num = (scores * torch.exp(lg * gap)) @ vd  # the causal mask is already in the scores
    if scale is not None:
        num = num * scale.to(torch.float64)[..., None]
    y = num / (scores.sum(-1, keepdim=True) + eps)
    to_end = torch.exp(lg[:, :, 0] * (t - 1 - pos))  # [H, T]
    s = torch.einsum("ht,bhtf,bhtd->bhfd", to_end, phi_k, vd)
    return y, s, phi_k.sum(dim=2)
