"""Causal Taylor linear attention (Based) in chunked PyTorch: the parallel prefill, the decode
state a prompt leaves, and one decode step. Any device, dtype and padding; computed in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..feature_map import taylor_feature_dim, taylor_feature_map

LINEAR_ATTENTION_CHUNK = 64
# Prompt tokens per slice when summing the decode state (phi(k) is float32 [B, H, chunk, F]).
STATE_CHUNK = 512


def masked_features(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float32 phi(q), phi(k), v with phi(k) and v zeroed at pads. Zeroing phi(k), not k, matters:
    phi(0) = [1, 0, ...] would still add 1 to every normaliser."""
    phi_q, phi_k, v = taylor_feature_map(q.float()), taylor_feature_map(k.float()), v.float()
    if key_mask is not None:
        keep = key_mask[:, None, :, None].to(torch.float32)
        phi_k, v = phi_k * keep, v * keep
    return phi_q, phi_k, v


def causal_linear_attention_parts(
    phi_q: torch.Tensor, phi_k: torch.Tensor, v: torch.Tensor, chunk: int = LINEAR_ATTENTION_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked causal sums: numerator sum_{j<=i} (phi_q_i . phi_k_j) v_j [B,H,T,Dv] and normaliser
    sum_{j<=i} phi_q_i . phi_k_j [B,H,T]. Inside a chunk the quadratic form is used; across chunks
    an exclusive prefix sum of per-chunk states, so memory is linear in T."""
    b, h, t, f = phi_q.shape
    pad = (-t) % chunk
    if pad:
        phi_q, phi_k, v = (F.pad(x, (0, 0, 0, pad)) for x in (phi_q, phi_k, v))
    n = (t + pad) // chunk
    qc = phi_q.view(b, h, n, chunk, f)
    kc = phi_k.view(b, h, n, chunk, f)
    vc = v.view(b, h, n, chunk, v.shape[-1])
    scores = torch.tril(qc @ kc.transpose(-1, -2))  # [B, H, N, C, C]
    chunk_kv = kc.transpose(-1, -2) @ vc  # [B, H, N, F, Dv]
    chunk_z = kc.sum(dim=-2)  # [B, H, N, F]
    prior_kv = chunk_kv.cumsum(dim=2) - chunk_kv
    prior_z = chunk_z.cumsum(dim=2) - chunk_z
    num = scores @ vc + qc @ prior_kv
    den = scores.sum(dim=-1) + (qc * prior_z[:, :, :, None, :]).sum(dim=-1)
    num = num.reshape(b, h, n * chunk, -1)[:, :, :t]
    den = den.reshape(b, h, n * chunk)[:, :, :t]
    return num, den


def based_linear_attention_torch(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """The chunked PyTorch form of ``based_linear_attention`` (any device, dtype, padding)."""
    phi_q, phi_k, v = masked_features(q, k, v, key_mask)
    num, den = causal_linear_attention_parts(phi_q, phi_k, v)
    return num / (den[..., None] + eps)


@dataclass
class LinearAttentionState:
    s: torch.Tensor  # [B, H, F, Dv] float32: sum of phi(k)^T v
    z: torch.Tensor  # [B, H, F] float32: sum of phi(k)


def linear_attention_state(
    k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, chunk: int = STATE_CHUNK
) -> LinearAttentionState:
    """The state a prompt leaves for decoding: s = sum_t phi(k_t)^T v_t, z = sum_t phi(k_t) over
    the positions key_mask keeps (None: all), float32. k [B, H, T, d], v [B, H, T, Dv].
    Summed slice by slice so phi(k) only ever exists for ``chunk`` tokens: for a whole prompt it
    is float32 [B, H, T, 1 + d + d^2], 2.3 GB per layer at batch 16, 16 heads, 8192 tokens."""
    b, h, t, d = k.shape
    features = taylor_feature_dim(d)
    s = torch.zeros(b, h, features, v.shape[-1], dtype=torch.float32, device=k.device)
    z = torch.zeros(b, h, features, dtype=torch.float32, device=k.device)
    start, stop = 0, t
    if key_mask is not None:
        # Columns no row keeps add nothing; skipping them skips the left pads and, for JRT's
        # encoder, everything after the encoder region.
        kept = key_mask.any(dim=0).nonzero()
        if kept.numel() == 0:
            return LinearAttentionState(s, z)
        start, stop = int(kept[0]), int(kept[-1]) + 1
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        phi_k = taylor_feature_map(k[:, :, lo:hi].float())
        if key_mask is not None:
            # Zero phi(k), not k: phi(0) = [1, 0, ...] would still count in z. A zero phi(k) row
            # also drops its v from s, so v needs no mask of its own.
            phi_k = phi_k * key_mask[:, None, lo:hi, None].to(phi_k.dtype)
        s += phi_k.transpose(-1, -2) @ v[:, :, lo:hi].float()
        z += phi_k.sum(dim=2)
    return LinearAttentionState(s, z)


def linear_attention_step(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: LinearAttentionState, eps: float
) -> tuple[torch.Tensor, LinearAttentionState]:
    """One token: q, k [B, H, d], v [B, H, Dv] -> (y [B, H, Dv] float32, advanced state)."""
    phi_q, phi_k = taylor_feature_map(q.float()), taylor_feature_map(k.float())
    s = state.s + phi_k[..., :, None] * v.float()[..., None, :]
    z = state.z + phi_k
    num = torch.einsum("bhf,bhfd->bhd", phi_q, s)
    den = (phi_q * z).sum(dim=-1)
    return num / (den[..., None] + eps), LinearAttentionState(s, z)
