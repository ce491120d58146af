"""Rotary width and frequencies against an independent float64 computation of flash-attn's
``RotaryEmbedding(dim)`` (issue 15, defect 1): the 1.3B Transformer++ has head dim 70 and rotary
fraction 0.5, so dim 35, which flash-attn turns into 18 frequencies over 36 rotated channels."""

from __future__ import annotations

import math

import pytest
import torch

from twice_inference.models.layers import Rotary
from twice_inference.models.transformer import TransformerConfig


def flash_rotary_float64(x: torch.Tensor, positions: torch.Tensor, dim: int, base: float):
    """Written from the formula, loop by loop: exponents 0, 2, 4, ... < dim over dim; channel c and
    c + n (n = number of frequencies) form one rotated pair; channels from 2n on pass through."""
    x = x.to(torch.float64)
    out = x.clone()
    freqs = [base ** -(e / dim) for e in range(0, dim, 2)]
    n = len(freqs)
    for t in range(x.shape[2]):
        for c, f in enumerate(freqs):
            angle = float(positions[0, t]) * f
            a, b = x[:, :, t, c], x[:, :, t, c + n]
            out[:, :, t, c] = a * math.cos(angle) - b * math.sin(angle)
            out[:, :, t, c + n] = b * math.cos(angle) + a * math.sin(angle)
    return out


@pytest.mark.parametrize("head_dim,dim", [(70, 35), (64, 64), (64, 32), (16, 7), (16, 10), (10, 9)])
def test_rotary_matches_flash_formula(head_dim: int, dim: int) -> None:
    gen = torch.Generator().manual_seed(dim)
    x = torch.randn(1, 2, 40, head_dim, generator=gen)
    positions = torch.arange(40)[None] * 37  # large angles: a wrong frequency shows at once
    ours = Rotary(dim)(x, positions).to(torch.float64)
    expected = flash_rotary_float64(x, positions, dim, 10000.0)
    assert (ours - expected).abs().max() < 1e-3  # float32 angles; a wrong frequency is O(1)


def test_attn_1b_rotary_width() -> None:
    config = TransformerConfig(
        vocab_size=16, d_model=1680, n_layers=1, n_heads=24, rotary_fraction=0.5
    )
    assert config.head_dim == 70
    rotary = Rotary(config.rotary_dim)
    assert rotary.width == 36  # 18 frequencies, not 17 over 34 channels


def test_causal_qk_at_head_dim_70() -> None:
    """The figure the issue quotes: q.k after rotary at head dim 70 / fraction 0.5 agrees with the
    flash formula to float precision (the old 34-channel form was ~75% off at long range)."""
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(1, 1, 512, 70, generator=gen)
    k = torch.randn(1, 1, 512, 70, generator=gen)
    pos = torch.arange(512)[None]
    ours = Rotary(35)(q, pos) @ Rotary(35)(k, pos).transpose(-1, -2)
    expected = flash_rotary_float64(q, pos, 35, 1e4) @ flash_rotary_float64(
        k, pos, 35, 1e4
    ).transpose(-1, -2)
    causal = torch.tril(torch.ones(512, 512, dtype=torch.bool))
    diff = (ours.double() - expected)[..., causal].norm() / expected[..., causal].norm()
    assert diff < 1e-5


@pytest.mark.parametrize("head_dim,dim", [(64, 64), (70, 35), (64, 32)])
def test_stacked_q_and_k_rotate_as_separate_calls(head_dim: int, dim: int) -> None:
    """Attention rotates q and k stacked on a leading dim, sharing one cos/sin (fewer launches per
    decoded token); each must come out as it would alone, full-width rotations included."""
    rotary = Rotary(dim).to(torch.bfloat16)  # the cached frequencies must stay float32
    qk = torch.randn(2, 2, 3, 5, head_dim).to(torch.bfloat16)
    positions = torch.arange(7, 12)[None].expand(2, 5)
    stacked = rotary(qk, positions)
    assert stacked.dtype == torch.bfloat16
    for i in range(2):
        assert torch.equal(stacked[i], rotary(qk[i], positions))
    expected = flash_rotary_float64(qk[0].float(), positions, dim, 10000.0)
    assert (stacked[0].double() - expected).abs().max() < 0.05
