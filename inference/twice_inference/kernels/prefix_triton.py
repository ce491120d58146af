"""Triton prefill for prefix linear attention (JRT-RNN; docs/protocol.md): public entry point.

"full" (default, the faster on an H200): the 273-feature kernel folds the encoder region (k_enc,
v_enc over M tokens, non-causal) into its state in each program before its decoder pass.
"symmetric": a sequence-parallel kernel folds the encoder into one state per (batch, head), then
the 153-feature causal decoder kernel starts from it.
Kernels: `symmetric_triton`, `based_triton`. Tested under the Triton interpreter in
`tests/test_kernels.py`.
"""

from __future__ import annotations

import torch

from twice_inference.kernels.based_triton import attention


def prefix_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    *,
    features: str = "full",
    out: torch.Tensor | None = None,
    **config: int,
) -> torch.Tensor:
    """q, k: [B, H, N, 16], v: [B, H, N, Dv] (decoder, causal); k_enc: [B, H, M, 16],
    v_enc: [B, H, M, Dv] (encoder, non-causal). All bf16. Returns y [B, H, N, Dv] bf16.
    `features`, `config`, `out` as in `based_triton.based_causal_attention`."""
    return attention(q, k, v, k_enc, v_enc, features=features, out=out, **config)
