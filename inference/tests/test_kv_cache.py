"""The KV cache written in place (models/transformer.py) against the cache it replaced, which grew
by ``torch.cat`` at every token: the same logits step after step, for a full cache (reserved up
front, or growing in blocks when not) and a sliding-window ring; the storage stays put while
decoding; and greedy generation with the reservation gives the tokens of the no-cache reference
(``engine/naive.py``)."""

from __future__ import annotations

import random

import pytest
import torch
from tiny_configs import HYBRID, VOCAB

from twice_inference.engine.generate import greedy_generate, left_pad
from twice_inference.engine.naive import naive_greedy_generate
from twice_inference.models import based, transformer
from twice_inference.models.layers import DecodeState, attend_one, positions_from_mask
from twice_inference.models.transformer import GROWTH_SLOTS, Attention, KVCache, to_ring

D_MODEL, HEADS = 32, 4


def _attention(window: int | None) -> Attention:
    torch.manual_seed(5)
    layer = Attention(D_MODEL, HEADS, rotary_dim=4, rotary_base=10000.0, window=window)
    return layer.double().eval()


def concat_step(
    layer: Attention, x: torch.Tensor, positions: torch.Tensor, cache: KVCache
) -> tuple[torch.Tensor, KVCache]:
    """The step the in-place cache replaced: append by ``torch.cat``, drop the oldest slot of a
    window's cache."""
    q, k, v = layer._qkv(x[:, None, :], positions[:, None])
    keys = torch.cat([cache.k, k], dim=2)
    values = torch.cat([cache.v, v], dim=2)
    valid = torch.cat([cache.valid, torch.ones_like(cache.valid[:, :1])], dim=1)
    y = layer._merge(attend_one(q, keys, values, valid))[:, 0]
    if layer.window is None:
        return y, KVCache(keys, values, valid)
    return y, KVCache(keys[:, :, 1:], values[:, :, 1:], valid[:, 1:])


def _prompt(batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x [B, T, D] with the rows left-padded to lengths length, length - 3, ..., and the mask."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(batch, length, D_MODEL, generator=gen, dtype=torch.float64)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for row in range(batch):
        mask[row, 3 * row :] = True
    return x, mask, positions_from_mask(mask)


@pytest.mark.parametrize(
    ("window", "reserve", "steps"),
    [
        (None, None, GROWTH_SLOTS + 6),  # no reservation: grows by GROWTH_SLOTS, twice
        (None, 20, 20),  # reserved for every step
        (None, 5, 12),  # reserved too little: grows past it
        (3, 20, 20),  # ring: prompt longer than the window
        (12, 20, 20),  # ring: prompt shorter than the window (invalid slots in the ring)
    ],
)
def test_in_place_steps_equal_the_concatenating_cache(
    window: int | None, reserve: int | None, steps: int
) -> None:
    layer = _attention(window)
    x, mask, positions = _prompt(3, 9)
    gen = torch.Generator().manual_seed(12)
    with torch.no_grad():
        _, cache = layer.prefill(x, mask, positions)
        _, reference = layer.prefill(x, mask, positions)
        if reserve is not None:
            cache = layer.reserve(cache, reserve)
        step_positions = mask.sum(dim=1)
        storage = None
        for index in range(steps):
            token = torch.randn(3, D_MODEL, generator=gen, dtype=torch.float64)
            y, cache = layer.step(token, step_positions, cache)
            want, reference = concat_step(layer, token, step_positions, reference)
            torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)
            if reserve is not None and index < reserve:
                if storage is not None:  # written in place: no copy while the room lasts
                    assert cache.k.data_ptr() == storage
                storage = cache.k.data_ptr()
            step_positions = step_positions + 1
    if window is None:
        assert cache.used == 9 + steps
        assert int(cache.valid.sum()) == int(mask.sum()) + 3 * steps
    else:
        assert cache.k.shape[2] == window + 1 and cache.ring


@pytest.mark.parametrize("window", [3, 12])
def test_ring_after_prefill_is_the_masked_prompt_tail(window: int) -> None:
    """Prefill masks only the keys and values the ring keeps: the same ring as masking the whole
    prompt first, padded rows included, for prompts longer and shorter than the window."""
    layer = _attention(window)
    x, mask, positions = _prompt(3, 9)
    with torch.no_grad():
        _, ring = layer.prefill(x, mask, positions)
        _, k, v = layer._qkv(x, positions)
    keep = mask[:, None, :, None].to(k.dtype)
    want = to_ring(KVCache(k * keep, v * keep, mask.clone()), window)
    assert torch.equal(ring.k, want.k) and torch.equal(ring.v, want.v)
    assert torch.equal(ring.valid, want.valid)


def test_prefill_state_holds_the_prompt_alone() -> None:
    """The state after prefill is as large as the prompt (the Pareto state axis measures it);
    only decoding adds room."""
    layer = _attention(None)
    x, mask, positions = _prompt(2, 7)
    with torch.no_grad():
        _, cache = layer.prefill(x, mask, positions)
        assert cache.k.shape[2] == 7 and cache.slot is None
        reserved = layer.reserve(cache, 10)
        assert reserved.k.shape[2] == 17 and int(reserved.slot) == 7
        assert layer.reserve(reserved, 4) is reserved  # room enough already
        with pytest.raises(ValueError, match="extra slots must be >= 0, got -1"):
            layer.reserve(cache, -1)


@pytest.mark.parametrize(
    ("build", "config"),
    [
        (
            transformer.build,
            dict(vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, rotary_fraction=0.5),
        ),
        (based.build, HYBRID),  # its sliding-window layer decodes in a ring
    ],
)
def test_greedy_tokens_unchanged_with_the_reservation(build, config) -> None:
    model = build(config).init_random(seed=3, std=0.3).double().eval()
    rng = random.Random(4)
    prompts = [[rng.randrange(1, VOCAB) for _ in range(n)] for n in (9, 2, 5, 14)]
    result = greedy_generate(
        model, prompts, max_new_tokens=12, stop_id=None, batch_size=4, pad_id=0
    )
    reference = naive_greedy_generate(model, prompts, max_new_tokens=12, stop_id=None)
    assert [g.tokens for g in result.generations] == reference
    assert len({tuple(t) for t in reference}) > 1, "model too degenerate to test anything"
    assert result.timing.graphed_batches == 0  # no graphs on a CPU


def test_reserve_decoding_reaches_every_attention_layer() -> None:
    model = based.build(HYBRID).init_random(seed=3).eval()
    ids, mask = left_pad([[5, 6, 7], [8]], 0, torch.device("cpu"))
    with torch.no_grad():
        _, state = model.prefill(ids, mask)
        ready = model.reserve_decoding(state, 8)
    assert isinstance(ready, DecodeState)
    kinds = [type(s).__name__ for s in ready.layers]
    assert "KVCache" in kinds
    for before, after in zip(state.layers, ready.layers, strict=True):
        if isinstance(after, KVCache):
            assert after.ring and after.slot is not None and before.slot is None
        else:
            assert after is before  # fixed-size states need no room
