"""The once-per-call padding decision (``ops.padding``) and the unpadded fast paths that use it:
Transformer++'s KV cache without its zeroing multiply, JRT-RNN's prefill with the encoder
projected over its M columns alone, and the short conv's tail state masked over K-1 positions."""

from __future__ import annotations

import pytest
import torch
from tiny_configs import HYBRID, VOCAB

from twice_inference.models import jrt_rnn, layers, transformer
from twice_inference.models.layers import ShortConv, rel_error
from twice_inference.ops.padding import known_padding, mask_is_full


def test_known_padding_answers_once_for_its_own_mask() -> None:
    mask = torch.ones(2, 7, dtype=torch.bool)
    with known_padding(mask) as full:
        assert full
        mask[1, 0] = False  # the device is not asked again: the decision made on entry stands
        assert mask_is_full(mask)
        other = torch.ones(2, 7, dtype=torch.bool)
        assert mask_is_full(other)  # any other tensor is asked for itself
        assert not mask_is_full(other, ask=False)  # unless the caller has its own check
        assert not mask_is_full(mask[:, 1:], ask=False)
    assert not mask_is_full(mask)  # outside, the mask is read again
    with known_padding(mask) as full:
        assert not full and not mask_is_full(mask, ask=False)


def alone_in_storage(x: torch.Tensor) -> bool:
    return x.untyped_storage().nbytes() == x.numel() * x.element_size()


@pytest.mark.parametrize("rotary_dim", [8, 4, 0])  # whole head, partial, none (k a view of qkv)
def test_unpadded_kv_cache_holds_the_same_keys_without_sharing_the_projection(
    rotary_dim: int,
) -> None:
    torch.manual_seed(0)
    attn = transformer.Attention(32, 4, rotary_dim, 10000.0).eval()
    x = torch.randn(2, 9, 32)
    mask = torch.ones(2, 9, dtype=torch.bool)
    positions = layers.positions_from_mask(mask)
    with torch.no_grad():
        y, cache = attn.prefill(x, mask, positions)
        q, k, v = attn._qkv(x, positions)
    assert torch.equal(cache.k, k) and torch.equal(cache.v, v) and bool(cache.valid.all())
    # each in storage of its own: a view would keep q or the whole qkv projection alive
    assert alone_in_storage(cache.k) and alone_in_storage(cache.v)
    # A padded prompt still zeroes its pad keys and values.
    padded = mask.clone()
    padded[0, :3] = False
    with torch.no_grad():
        _, cache = attn.prefill(x, padded, layers.positions_from_mask(padded))
    assert not cache.k[0, :, :3].any() and not cache.v[0, :, :3].any()
    assert cache.k[1].abs().sum() > 0


@pytest.mark.parametrize("length", [24, 40])  # the prompt exactly M, and longer
def test_jrt_unpadded_prefill_equals_the_general_path(
    length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder projected over its first M columns alone gives the general path's output and
    decode state (float32: to rounding)."""
    model = jrt_rnn.build({**HYBRID, "encoder_length": 24}).init_random(seed=2).eval()
    ids = torch.randint(1, VOCAB, (2, length), generator=torch.Generator().manual_seed(5))
    ones = torch.ones_like(ids)
    nxt = torch.tensor([3, 7])
    calls = {"unpadded": 0}
    fast = jrt_rnn.PrefixLinearAttention._prefill_unpadded

    def counted(self: jrt_rnn.PrefixLinearAttention, x: torch.Tensor):
        calls["unpadded"] += 1
        return fast(self, x)

    monkeypatch.setattr(jrt_rnn.PrefixLinearAttention, "_prefill_unpadded", counted)
    with torch.no_grad():
        logits, state = model.prefill(ids, ones)
        step, _ = model.step(nxt, state)
        assert calls["unpadded"] == len(HYBRID["linear_attn_layers"])
        monkeypatch.setattr(jrt_rnn, "mask_is_full", lambda mask, ask=True: False)
        want_logits, want_state = model.prefill(ids, ones)
        want_step, _ = model.step(nxt, want_state)
    assert calls["unpadded"] == len(HYBRID["linear_attn_layers"])  # the general path ran
    assert rel_error(logits, want_logits) < 1e-5
    assert rel_error(step, want_step) < 1e-5
    got = state.layers[HYBRID["linear_attn_layers"][0]]
    want = want_state.layers[HYBRID["linear_attn_layers"][0]]
    assert rel_error(got.s, want.s) < 1e-5 and rel_error(got.z, want.z) < 1e-5


@pytest.mark.parametrize("kernel_size", [1, 3])
@pytest.mark.parametrize("length", [1, 2, 6])
def test_short_conv_tail_state_masks_only_the_kept_positions(kernel_size: int, length: int) -> None:
    conv = ShortConv(5, kernel_size)
    x = torch.randn(2, length, 5)
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[0, : length - 1] = False  # row 0 keeps only its last token
    state = conv.tail_state(x, mask)
    # what the state must be: the whole prompt masked, then its last K-1 positions, zero-filled
    full = (x * mask[..., None]).transpose(1, 2)
    want = torch.nn.functional.pad(full, (max(0, kernel_size - 1 - length), 0))
    want = want[..., want.shape[-1] - (kernel_size - 1) :]
    assert state.shape == (2, 5, kernel_size - 1) and state.is_contiguous()
    assert torch.equal(state, want)
