"""Feature maps for linear attention. Owns the Based 2nd-order Taylor map
phi(x) = [1, x / d^(1/4), (x outer x) / (sqrt(2) * sqrt(d))], so that
phi(q) . phi(k) = 1 + q.k / sqrt(d) + (q.k)^2 / (2d). Tested in ``tests/test_models_linear.py``.
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
