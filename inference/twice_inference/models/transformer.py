"""Transformer++ adapter (the paper's attention baseline): rotary, SwiGLU, RMSNorm, SDPA attention,
and a growing KV cache for ``step``. Pad keys are masked in the parallel form and never enter the
cache's attended set. Tested in ``tests/test_models_linear.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

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


@dataclass
class KVCache:
    k: torch.Tensor  # [B, H, S, Dh], rotary applied
    v: torch.Tensor
    valid: torch.Tensor  # [B, S] bool; pads stay False and are never attended


class Attention(Mixer):
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
        q, k = self.rotary(qkv[:2], positions)  # one rotation for both: one set of launches
        return q, k, qkv[2]

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(b, t, -1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x, positions)
        return self._merge(masked_causal_attention(q, k, v, mask, self.window))

    def prefill(self, x, mask, positions):
        q, k, v = self._qkv(x, positions)
        y = self._merge(masked_causal_attention(q, k, v, mask, self.window))
        keep = mask[:, None, :, None].to(k.dtype)
        cache = KVCache(k * keep, v * keep, mask.clone())
        if self.window is not None:
            cache = to_ring(cache, self.window)
        return y, cache

    def step(self, x, positions, state: KVCache):
        q, k, v = self._qkv(x[:, None, :], positions[:, None])
        keys = torch.cat([state.k, k], dim=2)
        values = torch.cat([state.v, v], dim=2)
        ones = torch.ones_like(state.valid[:, :1])
        valid = torch.cat([state.valid, ones], dim=1)
        y = self._merge(attend_one(q, keys, values, valid))[:, 0]
        if self.window is None:
            return y, KVCache(keys, values, valid)
        # Ring buffer: drop the oldest slot so exactly `window` past keys stay cached.
        return y, KVCache(keys[:, :, 1:], values[:, :, 1:], valid[:, 1:])

    def state_bytes(self, prompt_len: int, element_size: int) -> int:
        cached = prompt_len if self.window is None else self.window
        return 2 * cached * self.n_heads * self.head_dim * element_size


def to_ring(cache: KVCache, window: int) -> KVCache:
    """Keep the last ``window`` positions (left-filled with invalid slots for short prompts).
    The buffer is kept in time order; attention is order-free once rotary is applied, so a
    rolling slice is equivalent to a modular write pointer and easier to check."""
    s = cache.k.shape[2]
    if s >= window:
        return KVCache(
            cache.k[:, :, s - window :].contiguous(),
            cache.v[:, :, s - window :].contiguous(),
            cache.valid[:, s - window :].contiguous(),
        )
    pad = window - s
    b, h, _, d = cache.k.shape
    zeros = cache.k.new_zeros(b, h, pad, d)
    invalid = cache.valid.new_zeros(b, pad)
    return KVCache(
        torch.cat([zeros, cache.k], dim=2),
        torch.cat([zeros, cache.v], dim=2),
        torch.cat([invalid, cache.valid], dim=1),
    )


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
