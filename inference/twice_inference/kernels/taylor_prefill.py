"""The Taylor prefill the ops dispatch to: the CUDA kernel (``taylor_cuda``) where it is built
and measured faster for the shape (``taylor_cuda.prefer_cuda``), else the Triton kernels
(``based_triton`` / ``prefix_triton``), which stay the portable path and the one CPU tests run
under the interpreter.
"""

from __future__ import annotations

import torch

from twice_inference.kernels import based_triton, prefix_triton, taylor_cuda


def use_cuda(v: torch.Tensor) -> bool:
    b, h, _, dv = v.shape
    return taylor_cuda.cuda_applies(v) and taylor_cuda.prefer_cuda(b * h, dv)


def based_prefill(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Causal Based prefill, bf16 in and out (contract of ``based_causal_attention``)."""
    if use_cuda(v):
        return taylor_cuda.taylor_prefill(q, k, v, out=out)
    return based_triton.based_causal_attention(q, k, v, out=out)


def prefix_prefill(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Prefix linear attention prefill (JRT-RNN), bf16 (contract of
    ``prefix_triton.prefix_linear_attention``)."""
    if use_cuda(v):
        return taylor_cuda.taylor_prefill(q, k, v, k_enc, v_enc, out=out)
    return prefix_triton.prefix_linear_attention(q, k, v, k_enc, v_enc, out=out)
