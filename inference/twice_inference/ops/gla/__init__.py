"""Gated linear attention (GLA). ``gla`` is the dispatch point for the prefill:
flash-linear-attention's ``chunk_gla`` where fla imports and ``kernel_mode.kernel_may_run`` on a
CUDA tensor, else the chunked PyTorch form; ``gla_step`` advances one decoded token. ``naive``
is the float64 reference both are tested against (``tests/test_models_ssm.py``, also against
fla's own ``naive_recurrent_gla``; fla's kernel on a GPU by ``bench.scans``).
"""

from __future__ import annotations

import torch

from ..kernel_mode import fla_available, kernel_may_run
from .chunk import gla_chunked, gla_step
from .naive import gla_naive


def gla(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, S: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k, g [B, T, H, K]; v [B, T, H, V]; S [B, H, K, V] -> float32 (o [B, T, H, V], S_T).
    Pad positions carry k = 0 and g = 0, which leave the state as it was."""
    if q.shape[1] > 0 and fla_available() and kernel_may_run((q, k, v, g, S), interpretable=False):
        from fla.ops.gla import chunk_gla  # imports triton: lazily

        o, S_t = chunk_gla(
            q.contiguous(),
            k.contiguous(),
            v.contiguous(),
            g.contiguous(),
            scale=q.shape[-1] ** -0.5,
            initial_state=S.contiguous(),
            output_final_state=True,
        )
        return o.float(), S_t.float()
    return gla_chunked(q, k, v, g, S)


__all__ = ["gla", "gla_chunked", "gla_naive", "gla_step"]
