"""The reference for Mamba-2's SSD (scalar-times-identity A per head): the recurrence one step at
a time, computed in float64 by default. The chunked PyTorch form, fla's kernel and the models'
slow path are tested against it.
"""

from __future__ import annotations

import torch


def ssd_naive(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T,  y_t = h_t C_t, in ``dtype``.

    x [Bt, T, H, P]; dt [Bt, T, H]; A [H]; B, C [Bt, T, H, N] (groups already expanded to heads);
    h [Bt, H, P, N] -> (y [Bt, T, H, P], h_T).
    """
    x, dt, A, B, C, h = (t.to(dtype) for t in (x, dt, A, B, C, h))
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(dt[:, t] * A)[..., None, None]
        h = decay * h + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, :, None, :]
        ys.append((h * C[:, t, :, None, :]).sum(-1))
    y = torch.stack(ys, dim=1) if ys else x.new_zeros(x.shape)
    return y, h
