"""BaseConv's gated short convolution, silu(causal_depthwise_conv(x masked)) * gate, over
[B, T, C]. ``gated_short_conv`` is the dispatch point: one fused Triton kernel
(``triton_kernel.py``) where ``kernel_mode.kernel_may_run``, else the PyTorch form.

On an H200 the PyTorch form of this block was the largest non-matmul cost of a Based or JRT-RNN
360M prefill (torch.profiler, docs/measurements/2026-11-29-h200-model-speed.md): the mask
multiply, a transposed and padded copy for ``conv1d``, PyTorch's generic depthwise kernel, silu
and the gate each make a pass over [B, T, C] in memory. The kernel reads x (with a K - 1 token
halo) and the gate once and writes once. Tested in ``tests/test_short_conv.py`` under the Triton
interpreter against the PyTorch form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..kernel_mode import kernel_may_run


def causal_depthwise_conv(
    x: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """x [B, T, C], mask [B, T] bool, weight [C, 1, K] -> [B, T, C]: causal (K - 1 zeros on the
    left) over x with pad positions zeroed, so a left-padded prompt sees exactly the zeros it
    would see alone."""
    x = x * mask[..., None].to(x.dtype)
    xt = F.pad(x.transpose(1, 2), (weight.shape[-1] - 1, 0))
    return F.conv1d(xt, weight, bias, groups=x.shape[-1]).transpose(1, 2)


def gated_short_conv_torch(
    x: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    gate: torch.Tensor | None,
) -> torch.Tensor:
    """gate [B, T, C] or None -> silu(causal_depthwise_conv(x, ...)) (* gate)."""
    y = F.silu(causal_depthwise_conv(x, mask, weight, bias))
    return y if gate is None else y * gate


def gated_short_conv(
    x: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    gate: torch.Tensor | None,
) -> torch.Tensor:
    """``gated_short_conv_torch``'s function; fused where the kernel may run (the kernel rounds
    once, at the end, where the PyTorch form rounds after each op in a 16-bit dtype)."""
    tensors = tuple(t for t in (x, weight, bias, gate) if t is not None)
    if x.shape[1] > 0 and kernel_may_run(tensors):
        from .triton_kernel import gated_short_conv as kernel  # imports triton: lazily

        return kernel(x, mask, weight, bias, gate)
    return gated_short_conv_torch(x, mask, weight, bias, gate)


__all__ = ["causal_depthwise_conv", "gated_short_conv", "gated_short_conv_torch"]
