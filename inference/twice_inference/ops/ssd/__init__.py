"""Mamba-2's SSD. ``ssd`` is the dispatch point for the prefill: flash-linear-attention's
chunked simple-GLA kernel (SSD is simple GLA with q = C, k = B, v = dt x, log decay dt A, scale 1)
where fla imports and ``kernel_mode.kernel_may_run`` on a CUDA tensor, else the chunked PyTorch
form; ``ssd_step`` advances one decoded token. ``naive`` is the float64 reference both are tested
against (``tests/test_models_ssm.py``; fla's path on a GPU by ``bench.scans``).
"""

from __future__ import annotations

import torch

from ..kernel_mode import fla_available, kernel_may_run
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
    Pad positions carry dt = 0, which leaves the state as it was. fla computes in the inputs'
    dtype (float32 here) with tf32 tensor-core products."""
    if x.shape[1] > 0 and fla_available() and kernel_may_run((x, dt, B, C, h), interpretable=False):
        from fla.ops.simple_gla import chunk_simple_gla  # imports triton: lazily

        v = x * dt[..., None]
        y, h_t = chunk_simple_gla(
            C.contiguous(),
            B.contiguous(),
            v.contiguous(),
            g=(dt * A).contiguous(),
            scale=1.0,
            initial_state=h.transpose(-1, -2).contiguous(),  # fla's state is [K = N, V = P]
            output_final_state=True,
        )
        return y.float(), h_t.transpose(-1, -2).float()
    return ssd_chunked(x, dt, A, B, C, h, chunk)


__all__ = ["ssd", "ssd_chunked", "ssd_naive", "ssd_step"]
