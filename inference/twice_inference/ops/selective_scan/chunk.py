"""Mamba-1's selective scan in chunked PyTorch (any device and dtype, computed in float32) and
the one-token step that decoding uses.
"""

from __future__ import annotations

import torch

SCAN_CHUNK = 16


def selective_scan_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    chunk: int = SCAN_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same function as ``naive.selective_scan_naive``, in float32. Inside a chunk every state is a
    decayed sum of the chunk's inputs, computed at once; chunks are chained sequentially. Decays
    are formed as exp(cum_t - cum_s) with s <= t (never exp of a positive number), so it is stable
    for any dt. Memory is [Bt, chunk, chunk, Di, N] per chunk: the reason a kernel replaces it."""
    x, dt, A, B, C, h = (t.float() for t in (x, dt, A, B, C, h))
    ys = []
    for start in range(0, x.shape[1], chunk):
        xc, dtc = x[:, start : start + chunk], dt[:, start : start + chunk]
        Bc, Cc = B[:, start : start + chunk], C[:, start : start + chunk]
        length = xc.shape[1]
        cum = torch.cumsum(dtc[..., None] * A, dim=1)  # [Bt, L, Di, N], non-increasing
        inputs = (dtc * xc)[..., None] * Bc[:, :, None, :]  # [Bt, L, Di, N]
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        diff = cum[:, :, None] - cum[:, None, :]  # [Bt, L(t), L(s), Di, N]
        decay = torch.where(causal[None, :, :, None, None], diff, float("-inf")).exp()
        states = torch.einsum("btsdn,bsdn->btdn", decay, inputs) + cum.exp() * h[:, None]
        ys.append((states * Cc[:, :, None, :]).sum(-1))
        h = states[:, -1]
    y = torch.cat(ys, dim=1) if ys else x.new_zeros(x.shape)
    return y, h


def selective_scan_step(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token: x, dt [Bt, Di]; A [Di, N]; B, C [Bt, N]; h [Bt, Di, N] float32 -> (y [Bt, Di]
    float32, next h)."""
    x, dt, B, C = x.float(), dt.float(), B.float(), C.float()
    h = torch.exp(dt[..., None] * A) * h + (dt * x)[..., None] * B[:, None, :]
    return (h * C[:, None, :]).sum(-1), h
