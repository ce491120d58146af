"""The reference for Mamba-1's selective scan: the recurrence one step at a time, computed in
float64 by default. The chunked PyTorch form, the Triton kernel and the models' slow path are
tested against it (``tests/test_models_ssm.py``, ``tests/test_scan_kernels.py``).
"""

from __future__ import annotations

import torch


def selective_scan_naive(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t,  y_t = h_t C_t, in ``dtype``.

    x, dt [Bt, T, Di]; A [Di, N]; B, C [Bt, T, N]; h [Bt, Di, N] -> (y [Bt, T, Di], h_T).
    """
    x, dt, A, B, C, h = (t.to(dtype) for t in (x, dt, A, B, C, h))
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(dt[:, t, :, None] * A)
        h = decay * h + (dt[:, t] * x[:, t])[..., None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1) if ys else x.new_zeros(x.shape)
    return y, h
