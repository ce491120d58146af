"""Rotary frequencies as flash-attn's ``RotaryEmbedding(dim)`` builds them, odd ``dim`` included.

flash-attn makes ``arange(0, dim, 2) / dim`` exponents, so ``ceil(dim / 2)`` frequencies, and
rotates ``2 * ceil(dim / 2)`` channels (non-interleaved halves). For an even ``dim`` that is the
textbook form; for an odd one (the 1.3B Transformer++: head dim 70, fraction 0.5, so dim 35) it
rotates one channel more than ``dim`` with exponents divided by ``dim``, not by the rotated width.
The hazy checkpoints were trained that way, so inference must match it exactly.
Tested by ``tests/test_rotary.py`` against a float64 computation of the same formula.
"""

from __future__ import annotations

import torch


def rotated_width(dim: int) -> int:
    """Channels actually rotated for a configured rotary ``dim``."""
    if dim < 0:
        raise ValueError(f"rotary dim must be >= 0, got {dim}")
    return 2 * ((dim + 1) // 2)


def inverse_frequencies(dim: int, base: float, device: torch.device | None = None) -> torch.Tensor:
    """[ceil(dim / 2)] float32: base ** -(2i / dim) for 2i in 0, 2, ... < dim."""
    exponents = torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim
    return 1.0 / (base**exponents)
