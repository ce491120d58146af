"""Gated linear attention (GLA). ``gla`` is the dispatch point for the prefill; ``gla_step``
advances one decoded token. ``naive`` is the float64 reference the chunked form is tested
against (``tests/test_models_ssm.py``, also against fla's own ``naive_recurrent_gla``).
"""

from __future__ import annotations

import torch

from .chunk import gla_chunked, gla_step
from .naive import gla_naive


def gla(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, S: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k, g [B, T, H, K]; v [B, T, H, V]; S [B, H, K, V] -> float32 (o [B, T, H, V], S_T).
    Pad positions carry k = 0 and g = 0, which leave the state as it was."""
    return gla_chunked(q, k, v, g, S)


__all__ = ["gla", "gla_chunked", "gla_naive", "gla_step"]
