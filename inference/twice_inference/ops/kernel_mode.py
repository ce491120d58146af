"""When a kernel may stand in for an op's PyTorch form: the Taylor kernels (Based, JRT-RNN;
CUDA or Triton, ``kernels.taylor_prefill``), the Triton selective scan (Mamba-1), fla's chunked
kernels (Mamba-2's SSD, GLA), fla's window attention (``ops.window_attention``) and the fused
rotary and SwiGLU (``ops.pointwise``).
``TWICE_TAYLOR_KERNEL`` (its name from when it governed the Taylor kernels alone): "auto" uses
the kernels on CUDA tensors where they apply, PyTorch elsewhere; "off" always PyTorch (A/B
timing, bit-reproducible evals); "interpreter" also CPU tensors, through Triton's interpreter
(tests; needs TRITON_INTERPRET=1 before the kernels are imported; fla's chunked kernels stay
CUDA-only, its window attention runs there too). The env var can be overridden in-process with
``use_taylor_kernel_mode``."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .padding import mask_is_full

KERNEL_MODE_ENV = "TWICE_TAYLOR_KERNEL"
KERNEL_MODES = ("auto", "off", "interpreter")
_kernel_mode_override: str | None = None
KERNEL_FEATURE_DIM = 16  # the kernels are specialised for d = 16
# The kernels pick their own tuned launch config; its value block (32) must divide Dv.
KERNEL_VALUE_BLOCK = 32
# The kernels divide by the bare normaliser. It is >= 1/2 (1 + s + s^2/2 >= 1/2 for the first
# key alone), so an eps this small moves y by < 2e-6 relative, far below bf16 output rounding.
KERNEL_MAX_EPS = 1e-6


def taylor_kernel_mode() -> str:
    mode = _kernel_mode_override or os.environ.get(KERNEL_MODE_ENV, "auto")
    if mode not in KERNEL_MODES:
        raise ValueError(f"{KERNEL_MODE_ENV} must be one of {KERNEL_MODES}, got {mode!r}")
    return mode


@contextmanager
def use_taylor_kernel_mode(mode: str) -> Iterator[None]:
    """Force a kernel mode inside a block (the model benchmark's A/B), whatever the env var
    says."""
    global _kernel_mode_override
    if mode not in KERNEL_MODES:
        raise ValueError(f"kernel mode must be one of {KERNEL_MODES}, got {mode!r}")
    previous, _kernel_mode_override = _kernel_mode_override, mode
    try:
        yield
    finally:
        _kernel_mode_override = previous


def kernel_may_run(tensors: tuple[torch.Tensor, ...], *, interpretable: bool = True) -> bool:
    """The checks every kernel shares: the mode allows a kernel on these tensors' device (CPU only
    in "interpreter" mode, and only for a kernel the interpreter can run), and nothing needs a
    gradient (the kernels are forward-only: training stays on PyTorch)."""
    mode = taylor_kernel_mode()
    if mode == "off":
        return False
    device = tensors[0].device.type
    on_cpu = device == "cpu" and mode == "interpreter" and interpretable
    if device != "cuda" and not on_cpu:
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    if on_cpu and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(f"{KERNEL_MODE_ENV}=interpreter on CPU needs TRITON_INTERPRET=1")
    return True


@functools.cache
def fla_available() -> bool:
    """flash-linear-attention is an optional dependency: its kernels are used when it imports."""
    return importlib.util.find_spec("fla") is not None


def taylor_kernel_applies(
    tensors: tuple[torch.Tensor, ...], key_mask: torch.Tensor | None, eps: float
) -> bool:
    """True when the Triton kernels compute what the PyTorch path does (to bf16 rounding) for
    (q, k, v[, k_enc, v_enc]): the right device for the mode, all bf16 (the kernels' only dtype;
    casting fp16/fp32 down would change the numbers, so those stay on PyTorch), feature dim 16,
    value dim a multiple of the value block, a tiny eps, and no padding: the kernels have no
    mask, and a pad must stay out of every state including the normaliser."""
    if taylor_kernel_mode() == "off":
        return False
    q, k, v = tensors[:3]
    if any(t.dtype != torch.bfloat16 for t in tensors):
        return False
    if q.shape[-1] != KERNEL_FEATURE_DIM or k.shape[-1] != KERNEL_FEATURE_DIM:
        return False
    if v.shape[-1] % KERNEL_VALUE_BLOCK or eps > KERNEL_MAX_EPS or q.shape[2] == 0:
        return False
    if key_mask is not None and not mask_is_full(key_mask):
        return False
    return kernel_may_run(tensors)
