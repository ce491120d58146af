"""The Taylor feature map shared by every linear-attention op and kernel. Owns the Based
2nd-order map phi(x) = [1, x / d^(1/4), (x outer x) / (sqrt(2) * sqrt(d))], so that
phi(q) . phi(k) = 1 + q.k / sqrt(d) + (q.k)^2 / (2d), and the 160-wide symmetric layout the
symmetric Triton kernels use. Tested in ``tests/test_models_linear.py`` and
``tests/test_kernels.py``.
"""

from __future__ import annotations

import math

import torch


def taylor_feature_dim(input_dim: int) -> int:
    """1 + d + d^2 (273 for the paper's d = 16)."""
    return 1 + input_dim + input_dim * input_dim


def taylor_feature_map(x: torch.Tensor) -> torch.Tensor:
    """[..., d] -> [..., 1 + d + d^2]."""
    d = x.shape[-1]
    sqrt_d = math.sqrt(d)
    outer = (x[..., :, None] * x[..., None, :]).flatten(start_dim=-2)
    ones = torch.ones_like(x[..., :1])
    return torch.cat([ones, x / math.sqrt(sqrt_d), outer / (math.sqrt(2.0) * sqrt_d)], dim=-1)


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
