"""Transformer++ adapter (the paper's attention baseline): rotary, SwiGLU, RMSNorm, SDPA attention,
and a KV cache that ``step`` writes in place (``KVCache``). Pad keys are masked in the parallel
form and never enter the cache's attended set. Tested in ``tests/test_models_linear.py`` and
``tests/test_kv_cache.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..ops.padding import mask_is_full
from .layers import (
    Block,
    DecoderLM,
    Mixer,
    Rotary,
    attend_one,
    masked_causal_attention,
    swiglu_hidden_default,
)


class TransformerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: int = Field(gt=0)
    d_model: int = Field(gt=0)
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    mlp_hidden: int | None = Field(default=None, gt=0)  # None: 8/3 * d rounded up to 128
    rotary_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    rotary_base: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    @model_validator(mode="after")
    def _check_heads(self) -> TransformerConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        return self

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def rotary_dim(self) -> int:
        # flash-attn truncates and keeps an odd result (Rotary rotates its rounded-up width).
        return int(self.rotary_fraction * self.head_dim)

    @property
    def mlp_width(self) -> int:
        return self.mlp_hidden or swiglu_hidden_default(self.d_model)


@dataclass(frozen=True)
class KVCache:
    """Keys and values, written in place while decoding.

    ``k``, ``v`` [B, H, S, Dh] (rotary applied) and ``valid`` [B, S] (pads and unwritten slots
    False, never attended). Prefill returns the prompt's keys alone (``slot`` None); the first
    ``step`` (or ``reserve``) turns that into the decoding form: a buffer with free slots past the
    prompt and ``slot``, a one-element device tensor naming the slot the next token goes to. From
    then on the storage stays put from step to step. Growing the cache by ``torch.cat`` at every
    token copied it whole each step (half the GPU time of a decode), and fixed storage is what lets
    a decode step be captured as a CUDA graph. ``used`` counts written slots on the host, so
    deciding to grow needs no device sync; only the object a step returns has it advanced, so a
    step that is recorded but never run (a failed graph capture) leaves the state true.

    A sliding-window cache decodes in a ring of ``window + 1`` slots: the ``window`` past keys
    plus the current one, each new token overwriting the oldest (attention does not care about
    slot order once rotary is applied)."""

    k: torch.Tensor
    v: torch.Tensor
    valid: torch.Tensor
    slot: torch.Tensor | None = None  # [1] long while decoding
    used: int = 0  # slots written, prompt included (the ring's size for a ring)
    ring: bool = False


# Slots a cache without a reservation grows by when full: a few steps' worth, amortising the copy.
GROWTH_SLOTS = 64


def _widened(cache: KVCache, before: int, after: int) -> tuple[torch.Tensor, ...]:
    """k, v, valid with ``before`` invalid zero slots in front and ``after`` behind."""
    b, h, _, d = cache.k.shape
    k_parts = [cache.k.new_zeros(b, h, before, d), cache.k, cache.k.new_zeros(b, h, after, d)]
    v_parts = [cache.v.new_zeros(b, h, before, d), cache.v, cache.v.new_zeros(b, h, after, d)]
    valid_parts = [cache.valid.new_zeros(b, before), cache.valid, cache.valid.new_zeros(b, after)]
    return torch.cat(k_parts, dim=2), torch.cat(v_parts, dim=2), torch.cat(valid_parts, dim=1)


def decoding_cache(cache: KVCache, window: int | None, extra: int) -> KVCache:
    """The decoding form of ``cache`` with room for at least ``extra`` more tokens (a ring has
    room for any number). The prefill form (``slot`` None) has exactly the prompt's slots."""
    if extra < 0:
        raise ValueError(f"extra slots must be >= 0, got {extra}")
    if cache.slot is None:
        used = cache.k.shape[2]
        if window is not None:
            # one free slot in front for the first decoded token, then the oldest, and so on
            k, v, valid = _widened(cache, 1, 0)
            slot = torch.zeros(1, dtype=torch.long, device=k.device)
            return KVCache(k, v, valid, slot, used + 1, ring=True)
        k, v, valid = _widened(cache, 0, extra)
        slot = torch.full((1,), used, dtype=torch.long, device=k.device)
        return KVCache(k, v, valid, slot, used)
    free = cache.k.shape[2] - cache.used
    if cache.ring or free >= extra:
        return cache
    k, v, valid = _widened(cache, 0, extra - free)
    return KVCache(k, v, valid, cache.slot, cache.used)


class Attention(Mixer[KVCache]):
    """Multi-head softmax attention; ``window`` (keys i-w..i) turns it into sliding-window
    attention, whose recurrent cache is then a fixed ring buffer instead of a growing one."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        rotary_dim: int,
        rotary_base: float,
        window: int | None = None,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.window = window
        self.Wqkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.rotary = Rotary(rotary_dim, rotary_base)

    def _qkv(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, t, _ = x.shape
        qkv = self.Wqkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # q and k rotated apart, so each lands in storage of its own: a prefill's cache keeps k,
        # and a k that shared storage with q would keep every layer's q alive with it
        return self.rotary(qkv[0], positions), self.rotary(qkv[1], positions), qkv[2]

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(b, t, -1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x, positions)
        return self._merge(masked_causal_attention(q, k, v, mask, self.window))

    def prefill(self, x, mask, positions):
        q, k, v = self._qkv(x, positions)
        y = self._merge(masked_causal_attention(q, k, v, mask, self.window))
        full = mask_is_full(mask)
        if self.window is not None:
            # The ring keeps the last ``window`` positions: mask those alone, not the whole
            # prompt's keys and values (two passes over them that the ring then dropped).
            start = max(0, k.shape[2] - self.window)
            k, v, mask = k[:, :, start:], v[:, :, start:], mask[:, start:]
        if full:
            # Nothing to zero, so no pass over k and v unless one shares storage (v always does:
            # a view would keep the whole qkv projection alive in the cache)
            cache = KVCache(sole_owner(k), sole_owner(v), mask.clone())
        else:
            keep = mask[:, None, :, None].to(k.dtype)
            cache = KVCache(k * keep, v * keep, mask.clone())
        if self.window is not None:
            cache = to_ring(cache, self.window)
        return y, cache

    def reserve(self, state: KVCache, extra: int) -> KVCache:
        return decoding_cache(state, self.window, extra)

    def step(self, x, positions, state: KVCache):
        q, k, v = self._qkv(x[:, None, :], positions[:, None])
        if state.slot is None or (not state.ring and state.used == state.k.shape[2]):
            state = decoding_cache(state, self.window, GROWTH_SLOTS)
        assert state.slot is not None  # decoding_cache made it
        state.k.index_copy_(2, state.slot, k)
        state.v.index_copy_(2, state.slot, v)
        state.valid.index_fill_(1, state.slot, True)
        y = self._merge(attend_one(q, state.k, state.v, state.valid))[:, 0]
        state.slot.add_(1)
        if state.ring:
            state.slot.remainder_(state.k.shape[2])
            return y, state
        return y, KVCache(state.k, state.v, state.valid, state.slot, state.used + 1)

    def state_bytes(self, prompt_len: int, element_size: int) -> int:
        cached = prompt_len if self.window is None else self.window
        return 2 * cached * self.n_heads * self.head_dim * element_size


def sole_owner(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself when it is contiguous and alone in its storage, else a compact copy: what a
    cache keeps must not hold a larger tensor's memory alive."""
    whole = x.numel() * x.element_size()
    if x.is_contiguous() and x.storage_offset() == 0 and x.untyped_storage().nbytes() == whole:
        return x
    return x.clone(memory_format=torch.contiguous_format)


def to_ring(cache: KVCache, window: int) -> KVCache:
    """Keep the last ``window`` positions (left-filled with invalid slots for short prompts)."""
    s = cache.k.shape[2]
    if s >= window:
        return KVCache(
            cache.k[:, :, s - window :].contiguous(),
            cache.v[:, :, s - window :].contiguous(),
            cache.valid[:, s - window :].contiguous(),
        )
    k, v, valid = _widened(cache, window - s, 0)
    return KVCache(k, v, valid)


class TransformerLM(DecoderLM):
    family = "transformer"

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config.vocab_size, config.d_model, config.norm_eps, config.tie_embeddings)
        self.config = config
        for _ in range(config.n_layers):
            mixer = Attention(config.d_model, config.n_heads, config.rotary_dim, config.rotary_base)
            self.layers.append(Block(config.d_model, mixer, config.mlp_width, config.norm_eps))


def build(config: dict) -> TransformerLM:
    return TransformerLM(TransformerConfig.model_validate(config))
