"""Causal Taylor linear attention with Based's fixed per-head decay and per-position output scale
(based-360m-30b; the layer is ``models.decay``). ``decayed_taylor_attention`` is the dispatch
point: the Triton kernel (``kernels.decay_triton``) where ``kernel_mode.taylor_kernel_applies``
(CUDA, bf16, d = 16, no padding; the interpreter in CPU tests), else the chunked PyTorch form
``decayed_linear_attention`` (any device, dtype and padding, float32). Tested against a float64
loop in ``tests/test_decay.py`` and, for the kernel, ``tests/test_decay_kernel.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..kernel_mode import taylor_kernel_applies
from .chunk import masked_features

# 128: at 8-16k tokens the in-chunk quadratic part and the [N, N] carry are then about even
DECAY_CHUNK = 128


def decayed_linear_attention(
    phi_q: torch.Tensor,
    phi_k: torch.Tensor,
    v: torch.Tensor,
    log_gamma: torch.Tensor,
    scale: torch.Tensor | None,
    eps: float,
    chunk: int = DECAY_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float32 features [B, H, T, F], v [B, H, T, Dv], log_gamma [H], scale [B, H, T] or None ->
    (y [B, H, T, Dv], decayed state s [B, H, F, Dv], plain z [B, H, F]).

    Chunked, with every chunk computed at once: quadratic inside a chunk; across chunks, the
    decayed state entering chunk c, sum_{c' < c} gamma^(C (c - 1 - c')) (chunk c's own sum), is
    one [N, N] x [N, F Dv] product per head. A loop over chunks (the first form) launched ~15
    kernels per 64 tokens, which bounded the 360M model's prefill by launches. The sequence is
    left-padded to whole chunks with zero features and values: they add nothing to any sum, and
    padding in front keeps the decay between the last token and the final state exact."""
    b, h, t, f = phi_q.shape
    dv = v.shape[-1]
    pad = (-t) % chunk
    if pad:
        phi_q, phi_k, v = (F.pad(x, (0, 0, pad, 0)) for x in (phi_q, phi_k, v))
        if scale is not None:
            scale = F.pad(scale, (pad, 0))
    n = (t + pad) // chunk
    qc = phi_q.reshape(b, h, n, chunk, f)
    kc = phi_k.reshape(b, h, n, chunk, f)
    vc = v.reshape(b, h, n, chunk, dv)
    lg = log_gamma.to(phi_q)[:, None, None]  # [H, 1, 1]
    idx = torch.arange(chunk, device=phi_q.device, dtype=phi_q.dtype)
    gap = idx[:, None] - idx[None, :]
    causal = gap >= 0
    within = torch.where(causal, torch.exp(lg * gap.clamp(min=0)), 0.0)  # [H, C, C]: gamma^(i-j)
    scores = qc @ kc.transpose(-1, -2)  # [B, H, N, C, C]
    num = (scores * within[None, :, None]) @ vc
    # the normaliser is not decayed: plain causal sums
    chunk_z = kc.sum(dim=3)  # [B, H, N, F]
    z_before = chunk_z.cumsum(dim=2) - chunk_z
    den = (scores * causal).sum(dim=-1) + (qc @ z_before[..., None])[..., 0]
    # each chunk's own decayed sum, as seen from its last position: gamma^(C-1-j) phi_k_j^T v_j
    to_end = torch.exp(lg * (chunk - 1 - idx)[None, :, None])[None, :, None]  # [1, H, 1, C, 1]
    chunk_s = ((kc * to_end).transpose(-1, -2) @ vc).reshape(b, h, n, f * dv)
    c = torch.arange(n, device=phi_q.device, dtype=phi_q.dtype)
    lag = c[:, None] - 1 - c[None, :]  # c - 1 - c'
    carry = torch.where(lag >= 0, torch.exp(lg * chunk * lag.clamp(min=0)), 0.0)  # [H, N, N]
    s_before = (carry[None] @ chunk_s).reshape(b, h, n, f, dv)
    from_carry = torch.exp(lg * (idx + 1)[None, :, None])[None, :, None]  # gamma^(i+1)
    num = num + from_carry * (qc @ s_before)
    if scale is not None:
        num = num * scale.reshape(b, h, n, chunk, 1)
    y = (num / (den[..., None] + eps)).reshape(b, h, n * chunk, dv)[:, :, pad:]
    to_final = torch.exp(lg[:, 0] * chunk * (n - 1 - c))  # [H, N]: gamma^(C (N-1-c))
    s = (to_final[None, :, None] @ chunk_s)[:, :, 0].reshape(b, h, f, dv)
    return y, s, chunk_z.sum(dim=2)


_kernel_allowed = True


@contextmanager
def without_decay_kernel() -> Iterator[None]:
    """The PyTorch form even where the kernel applies, leaving every other kernel as it is: the
    model benchmark's before and after in one process."""
    global _kernel_allowed
    previous, _kernel_allowed = _kernel_allowed, False
    try:
        yield
    finally:
        _kernel_allowed = previous


def decayed_taylor_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_gamma: torch.Tensor,
    scale: torch.Tensor | None,
    key_mask: torch.Tensor | None,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k [B, H, T, d] (before the feature map), v [B, H, T, Dv], log_gamma [H], scale
    [B, H, T] or None, key_mask [B, T] bool or None -> (y [B, H, T, Dv], decayed state s
    [B, H, F, Dv] float32, plain z [B, H, F] float32). y is bf16 from the kernel, float32 from
    the PyTorch form; any strides."""
    tensors = (q, k, v) if scale is None else (q, k, v, scale)
    if _kernel_allowed and taylor_kernel_applies(tensors, key_mask, eps):
        from ...kernels.decay_triton import decayed_taylor_prefill  # imports triton: lazily

        return decayed_taylor_prefill(q, k, v, log_gamma, scale)
    phi_q, phi_k, v32 = masked_features(q, k, v, key_mask)
    scale32 = None if scale is None else scale.float()
    return decayed_linear_attention(phi_q, phi_k, v32, log_gamma, scale32, eps)
