"""Slow, obvious PyTorch definitions of causal Based linear attention and prefix linear attention.

They materialise the 273-dim Taylor features and a quadratic masked score matrix, so they are the
ground truth the Triton kernels are tested against (in float64) and the "PyTorch" rows of the bench.
Tested in `tests/test_kernels.py` against a per-token recurrence and a direct softmax-free formula.
"""

from __future__ import annotations

import math

import torch


def taylor_features(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = [1, x/d^(1/4), (x (x) x)/(sqrt(2) sqrt(d))], so phi(q).phi(k) = 1 + s + s^2/2 with
    s = q.k/sqrt(d). For d = 16 this has 1 + 16 + 256 = 273 features."""
    d = x.shape[-1]
    ones = torch.ones(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
    first = x / d**0.25
    second = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2) / (math.sqrt(2.0) * math.sqrt(d))
    return torch.cat([ones, first, second], dim=-1)


def symmetric_taylor_features(x: torch.Tensor, key_side: bool) -> torch.Tensor:
    """The 160 features of the symmetric kernels, in their layout: 128 monomials x_i x_{(i+r)%16}
    (f = 16 r + i, r < 8), then x (16), x_i x_{i+8} (i < 8), 1, seven zeros; x scaled by
    d^(-1/4). The key side weights the diagonal (r = 0) by 1/2, so query . key features equal
    1 + s + s^2/2 with 153 non-zero features instead of 273. d must be 16."""
    if x.shape[-1] != 16:
        raise ValueError(f"symmetric features need d = 16, got {x.shape[-1]}")
    xs = x / 2.0  # 16^(-1/4)
    i = torch.arange(16, device=x.device)
    quad = torch.cat(
        [xs * xs[..., (i + r) % 16] * (0.5 if key_side and r == 0 else 1.0) for r in range(8)],
        dim=-1,
    )
    pairs = xs[..., :8] * xs[..., 8:]
    ones = torch.ones_like(xs[..., :1])
    zeros = torch.zeros_like(xs[..., :7])
    return torch.cat([quad, xs, pairs, ones, zeros], dim=-1)


def _check(name: str, t: torch.Tensor, ndim: int = 4) -> None:
    if t.ndim != ndim:
        raise ValueError(f"{name} must be [B, H, N, D], got shape {tuple(t.shape)}")


def causal_linear_attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """y_i = sum_{j<=i} phi(q_i).phi(k_j) v_j / sum_{j<=i} phi(q_i).phi(k_j), in `dtype`.

    q, k: [B, H, N, d]; v: [B, H, N, Dv]. Memory is O(N^2) per head: this is the slow path."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check(name, t)
    fq, fk = taylor_features(q.to(dtype)), taylor_features(k.to(dtype))
    scores = fq @ fk.transpose(-1, -2)  # [B, H, N, N]
    n = q.shape[-2]
    future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu_(1)
    scores.masked_fill_(future, 0.0)
    num = scores @ v.to(dtype)
    den = scores.sum(-1, keepdim=True)
    return num / den


def prefix_linear_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Prefix linear attention (JRT-RNN, spec 6.1): the causal decoder sums plus the non-causal
    encoder state S_enc = sum_{j<=M} phi(k_enc_j)^T v_enc_j (and z_enc = sum phi(k_enc_j)) added
    to every position's numerator and denominator.

    q, k: [B, H, N, d]; v: [B, H, N, Dv]; k_enc: [B, H, M, d]; v_enc: [B, H, M, Dv]."""
    for name, t in (("q", q), ("k", k), ("v", v), ("k_enc", k_enc), ("v_enc", v_enc)):
        _check(name, t)
    fq, fk = taylor_features(q.to(dtype)), taylor_features(k.to(dtype))
    fke = taylor_features(k_enc.to(dtype))
    state_enc = fke.transpose(-1, -2) @ v_enc.to(dtype)  # [B, H, 273, Dv]
    norm_enc = fke.sum(-2)  # [B, H, 273]
    scores = fq @ fk.transpose(-1, -2)
    n = q.shape[-2]
    future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu_(1)
    scores.masked_fill_(future, 0.0)
    num = scores @ v.to(dtype) + fq @ state_enc
    den = scores.sum(-1, keepdim=True) + (fq * norm_enc.unsqueeze(-2)).sum(-1, keepdim=True)
    return num / den


def recurrent_linear_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor | None = None,
    v_enc: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token-by-token recurrence s_i = s_{i-1} + phi(k_i)^T v_i, z_i = z_{i-1} + phi(k_i) in
    float64, started from the encoder state when given. An independent check of the quadratic
    forms above (tiny sizes only)."""
    fq, fk = taylor_features(q.double()), taylor_features(k.double())
    vd = v.double()
    state = torch.zeros(*q.shape[:2], fq.shape[-1], v.shape[-1], dtype=torch.float64)
    norm = torch.zeros(*q.shape[:2], fq.shape[-1], dtype=torch.float64)
    if k_enc is not None and v_enc is not None:
        fke = taylor_features(k_enc.double())
        state = state + torch.einsum("bhmf,bhmv->bhfv", fke, v_enc.double())
        norm = norm + fke.sum(-2)
    out = []
    for i in range(q.shape[-2]):
        state = state + fk[:, :, i, :, None] * vd[:, :, i, None, :]
        norm = norm + fk[:, :, i]
        num = torch.einsum("bhf,bhfv->bhv", fq[:, :, i], state)
        den = (fq[:, :, i] * norm).sum(-1, keepdim=True)
        out.append(num / den)
    return torch.stack(out, dim=2)
