"""Tests for ``twice_inference.models.layers``' softmax attention: the unpadded fast paths (causal
with no mask tensor, blocked sliding window) against the dense-mask reference, which stays the
path for padded batches. Float32 on CPU; the models' end-to-end agreement is in
``test_models_linear.py``. Also RMSNorm: half inputs normalised without a float32 copy give the
bits of the float32 computation rounded once.
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from twice_inference.models import layers
from twice_inference.models.layers import masked_causal_attention, masked_causal_attention_dense

TOL = 1e-5


def _qkv(t: int, b: int = 2, h: int = 3, d: int = 8) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(t)
    return tuple(torch.randn(b, h, t, d, generator=gen) for _ in range(3))


# T below, at and just above the window, not a multiple of it, and several blocks long.
@pytest.mark.parametrize("window", [None, 1, 4, 16])
@pytest.mark.parametrize("t", [1, 3, 4, 5, 6, 17, 50, 64])
def test_unpadded_fast_path_matches_dense(t: int, window: int | None) -> None:
    q, k, v = _qkv(t)
    mask = torch.ones(2, t, dtype=torch.bool)
    fast = masked_causal_attention(q, k, v, mask, window)
    dense = masked_causal_attention_dense(q, k, v, mask, window)
    assert (fast - dense).abs().max() < TOL


def test_unpadded_path_builds_no_square_mask() -> None:
    """The point of the fast path: no [T, T] mask reaches SDPA (a mask rules out flash; dense
    it is O(T^2)), and the sliding window's masks are [w, 2w] whatever T is."""
    q, k, v = _qkv(40)
    mask = torch.ones(2, 40, dtype=torch.bool)
    seen: list[tuple[int, ...] | None] = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, attn_mask=None, **kwargs):
        seen.append(None if attn_mask is None else tuple(attn_mask.shape))
        return real_sdpa(*args, attn_mask=attn_mask, **kwargs)

    with mock.patch.object(layers.F, "scaled_dot_product_attention", spy):
        masked_causal_attention(q, k, v, mask, None)
        assert seen == [None]
        seen.clear()
        masked_causal_attention(q, k, v, mask, 8)
        assert seen == [None, (8, 16)]  # block 0 plain causal, then the shared band mask
        seen.clear()
        mask[0, :3] = False
        masked_causal_attention(q, k, v, mask, 8)
        assert seen == [(2, 1, 40, 40)]  # padding: the dense reference


@pytest.mark.parametrize("window", [None, 4])
def test_padded_rows_keep_the_dense_semantics(window: int | None) -> None:
    """With left padding the dense path runs: a real query ignores pad keys, so it equals the
    same row run unpadded; a pad query sees only itself, so no row is NaN."""
    t, pad = 21, 6
    q, k, v = _qkv(t)
    mask = torch.ones(2, t, dtype=torch.bool)
    mask[1, :pad] = False
    out = masked_causal_attention(q, k, v, mask, window)
    assert not out.isnan().any()
    alone = masked_causal_attention(
        q[1:, :, pad:], k[1:, :, pad:], v[1:, :, pad:], mask[1:, pad:], window
    )
    assert (out[1:, :, pad:] - alone).abs().max() < TOL
    assert (out[1:, :, :pad] - v[1:, :, :pad]).abs().max() < TOL  # pad query: its own value


def test_window_boundary_is_inclusive() -> None:
    """Query i sees key i - w and not i - w - 1 (the ring buffer keeps w past keys + itself):
    give key 0 a huge score and a marked value, and only queries 0..w may pick it up."""
    t, w = 12, 4
    q = torch.zeros(1, 1, t, 2)
    q[..., 0] = 1.0
    k = torch.zeros(1, 1, t, 2)
    k[0, 0, 0, 0] = 50.0
    v = torch.zeros(1, 1, t, 1)
    v[0, 0, 0, 0] = 1.0
    out = masked_causal_attention(q, k, v, torch.ones(1, t, dtype=torch.bool), w)[0, 0, :, 0]
    assert (out[: w + 1] > 0.99).all()
    assert (out[w + 1 :] == 0).all()


def test_window_must_be_positive() -> None:
    q, k, v = _qkv(5)
    with pytest.raises(ValueError, match="window"):
        masked_causal_attention(q, k, v, torch.ones(2, 5, dtype=torch.bool), 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rmsnorm_half_input_matches_float32_rounded_once(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    norm = layers.RMSNorm(256, eps=1e-5)
    with torch.no_grad():
        # values the half dtype holds exactly, so both weights are the same numbers
        norm.weight.copy_((1 + 0.1 * torch.randn(256, generator=gen)).to(dtype).float())
    x = (3 * torch.randn(4, 7, 256, generator=gen)).to(dtype)
    expected = (
        x.double()
        * (x.double().pow(2).mean(-1, keepdim=True) + 1e-5).rsqrt()
        * norm.weight.double()
    )
    mixed = norm(x)  # float32 weight: the float32 copy of x
    norm = norm.to(dtype)
    direct = norm(x)  # weight in x's dtype: no copy
    assert direct.dtype == mixed.dtype == dtype
    assert torch.equal(direct, mixed)
    # one rounding of the exact value: within half a unit in the last place
    assert ((direct.double() - expected).abs() <= expected.abs() * torch.finfo(dtype).eps).all()
