"""Mamba-2's SSD. ``ssd`` is the dispatch point for the prefill; ``ssd_step`` advances one
decoded token. ``naive`` is the float64 reference the chunked form is tested against
(``tests/test_models_ssm.py``).
"""

from __future__ import annotations

import torch

from .chunk import ssd_chunked, ssd_step
from .naive import ssd_naive


def ssd(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [Bt, T, H, P]; dt [Bt, T, H]; A [H]; B, C [Bt, T, H, N]; h [Bt, H, P, N] -> float32
    (y [Bt, T, H, P], h_T). ``chunk`` is the checkpoint's chunk_size (the PyTorch form's block).
    Pad positions carry dt = 0, which leaves the state as it was."""
    return ssd_chunked(x, dt, A, B, C, h, chunk)


__all__ = ["ssd", "ssd_chunked", "ssd_naive", "ssd_step"]
