"""Mamba-1's selective scan. ``selective_scan`` is the dispatch point for the prefill: the
Triton scan (``kernels.selective_scan_triton``) where ``kernel_mode.kernel_may_run``, else the
chunked PyTorch form; ``selective_scan_step`` advances one decoded token. ``naive`` is the
float64 reference both are tested against (``tests/test_models_ssm.py``,
``tests/test_scan_kernels.py``).
"""

from __future__ import annotations

import torch

from ..kernel_mode import kernel_may_run
from .chunk import selective_scan_chunked, selective_scan_step
from .naive import selective_scan_naive


def selective_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x, dt [Bt, T, Di]; A [Di, N]; B, C [Bt, T, N]; h [Bt, Di, N] -> float32 (y [Bt, T, Di],
    h_T). Pad positions carry dt = 0, which leaves the state as it was, so the kernel needs no
    mask. Both paths compute in float32."""
    if x.shape[1] > 0 and kernel_may_run((x, dt, A, B, C, h)):
        from ...kernels.selective_scan_triton import selective_scan as scan_kernel  # lazily

        return scan_kernel(x, dt, A, B, C, h)
    return selective_scan_chunked(x, dt, A, B, C, h)


__all__ = [
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_naive",
    "selective_scan_step",
]
