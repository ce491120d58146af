"""Based hybrid adapter: per-layer mixers of three kinds (gated short-conv "BaseConv", Taylor
linear attention, sliding-window softmax attention), each followed by a SwiGLU MLP. The linear
attention itself is the op ``ops.linear_attention`` (kernel dispatch, chunked form, reference).
Tested in ``tests/test_models_linear.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..ops.feature_map import taylor_feature_dim
from ..ops.linear_attention import (
    LinearAttentionState,
    based_linear_attention,
    linear_attention_state,
    linear_attention_step,
)
from ..ops.short_conv import gated_short_conv
from .layers import Block, DecoderLM, Mixer, ShortConv
from .transformer import Attention


class BasedConfig(BaseModel):
    """Layers listed in ``linear_attn_layers`` / ``sliding_window_layers`` get those mixers; every
    other layer is a BaseConv layer (the hazy configs' alt_mixer_layers / alt_mixer_2_layers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: int = Field(gt=0)
    d_model: int = Field(gt=0)
    n_layers: int = Field(gt=0)
    linear_attn_layers: list[int]
    sliding_window_layers: list[int]
    mlp_hidden: int = Field(gt=0)
    # linear attention
    la_heads: int = Field(default=16, gt=0)
    feature_dim: int = Field(default=16, gt=0)
    la_head_dim: int | None = Field(default=None, gt=0)  # value head dim; None: d_model / la_heads
    la_eps: float = Field(default=1e-12, ge=0.0)
    # sliding-window attention: query i sees keys i-window..i
    swa_heads: int = Field(default=16, gt=0)
    window: int = Field(default=128, gt=0)
    rotary_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    rotary_base: float = 10000.0
    # BaseConv
    conv_kernel: int = Field(default=3, gt=0)
    conv_expand: int = Field(default=4, gt=0)
    conv_bias: bool = False  # the depthwise filter's bias (projections always have one)
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    # per-head fixed decay and its input-dependent scale (based-360m-30b; see decay.py)
    fixed_decay: bool = False
    decay_const: float = -3.0
    use_decay_proj: bool = False

    @model_validator(mode="after")
    def _check_layers(self) -> BasedConfig:
        la, swa = set(self.linear_attn_layers), set(self.sliding_window_layers)
        for name, layers in (("linear_attn_layers", la), ("sliding_window_layers", swa)):
            bad = [i for i in layers if not 0 <= i < self.n_layers]
            if bad:
                raise ValueError(f"{name} has indices {bad} outside 0..{self.n_layers - 1}")
        if la & swa:
            raise ValueError(
                f"layers {sorted(la & swa)} are in both linear_attn_layers and "
                "sliding_window_layers"
            )
        if self.d_model % self.swa_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by swa_heads={self.swa_heads}"
            )
        if self.la_head_dim is None and self.d_model % self.la_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by la_heads={self.la_heads}")
        if (self.conv_expand * self.d_model) % 2:
            raise ValueError(
                f"conv_expand * d_model must be even, got {self.conv_expand * self.d_model}"
            )
        return self

    def layer_kind(self, index: int) -> str:
        if index in self.linear_attn_layers:
            return "linear_attn"
        if index in self.sliding_window_layers:
            return "sliding_window"
        return "conv"

    @property
    def value_head_dim(self) -> int:
        return self.la_head_dim or self.d_model // self.la_heads

    @property
    def rotary_dim(self) -> int:
        # kept odd, as flash-attn does (layers.Rotary rotates the rounded-up width)
        return int(self.rotary_fraction * (self.d_model // self.swa_heads))


class LinearAttention(Mixer[LinearAttentionState]):
    """Taylor linear attention. Its state is kept in float32 whatever the weights' dtype: it
    is a running sum over the whole prompt, where bf16 would drop small terms."""

    def __init__(self, config: BasedConfig) -> None:
        super().__init__()
        self.heads = config.la_heads
        self.feature_dim = config.feature_dim
        self.value_dim = config.value_head_dim
        self.eps = config.la_eps
        d = config.d_model
        self.proj_q = nn.Linear(d, self.heads * self.feature_dim, bias=False)
        self.proj_k = nn.Linear(d, self.heads * self.feature_dim, bias=False)
        self.proj_v = nn.Linear(d, self.heads * self.value_dim, bias=False)
        self.out_proj = nn.Linear(self.heads * self.value_dim, d, bias=False)

    def _split(self, x: torch.Tensor, proj: nn.Linear, dim: int) -> torch.Tensor:
        b, t, _ = x.shape
        return proj(x).view(b, t, self.heads, dim).transpose(1, 2)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self._split(x, self.proj_q, self.feature_dim),
            self._split(x, self.proj_k, self.feature_dim),
            self._split(x, self.proj_v, self.value_dim),
        )

    def _out(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(b, t, -1).to(like.dtype))

    def forward(self, x, mask, positions):
        q, k, v = self._qkv(x)
        return self._out(based_linear_attention(q, k, v, mask, self.eps), x)

    def prefill(self, x, mask, positions):
        q, k, v = self._qkv(x)
        y = self._out(based_linear_attention(q, k, v, mask, self.eps), x)
        return y, linear_attention_state(k, v, mask)

    def step(self, x, positions, state: LinearAttentionState):
        q, k, v = self._qkv(x[:, None, :])
        y, state = linear_attention_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], state, self.eps)
        return self._out(y[:, :, None, :], x)[:, 0], state

    def state_bytes(self, prompt_len: int, element_size: int) -> int:
        features = taylor_feature_dim(self.feature_dim)
        return self.heads * features * (self.value_dim + 1) * 4  # float32 s and z


# ---------------------------------------------------------------------------------------------
# BaseConv: in_proj -> [u1, u2]; out_proj(silu(short_conv(u1)) * u2)
# ---------------------------------------------------------------------------------------------


class BaseConv(Mixer[torch.Tensor]):
    def __init__(self, config: BasedConfig) -> None:
        super().__init__()
        d = config.d_model
        self.inner = config.conv_expand * d // 2
        self.in_proj = nn.Linear(d, config.conv_expand * d, bias=True)
        self.conv = ShortConv(self.inner, config.conv_kernel, bias=config.conv_bias)
        self.out_proj = nn.Linear(self.inner, d, bias=True)

    def _gated(self, u1: torch.Tensor, u2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # one fused kernel on a GPU (ops.short_conv): the unfused form was a sixth of a prefill
        return gated_short_conv(u1, mask, self.conv.weight, self.conv.bias, u2)

    def forward(self, x, mask, positions):
        u1, u2 = self.in_proj(x).split(self.inner, dim=-1)
        return self.out_proj(self._gated(u1, u2, mask))

    def prefill(self, x, mask, positions):
        u1, u2 = self.in_proj(x).split(self.inner, dim=-1)
        y = self.out_proj(self._gated(u1, u2, mask))
        return y, self.conv.tail_state(u1, mask)

    def step(self, x, positions, state: torch.Tensor):
        u1, u2 = self.in_proj(x).split(self.inner, dim=-1)
        conv_out, state = self.conv.step(u1, state)
        return self.out_proj(F.silu(conv_out) * u2), state

    def state_bytes(self, prompt_len: int, element_size: int) -> int:
        return self.inner * (self.conv.kernel_size - 1) * element_size


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def build_mixer(config: BasedConfig, index: int, linear_attention: type[Mixer]) -> Mixer:
    kind = config.layer_kind(index)
    if kind == "linear_attn":
        return linear_attention(config)
    if kind == "sliding_window":
        return Attention(
            config.d_model,
            config.swa_heads,
            config.rotary_dim,
            config.rotary_base,
            window=config.window,
        )
    return BaseConv(config)


class BasedLM(DecoderLM):
    family = "based"

    def __init__(
        self, config: BasedConfig, linear_attention: type[Mixer] = LinearAttention
    ) -> None:
        super().__init__(config.vocab_size, config.d_model, config.norm_eps, config.tie_embeddings)
        self.config = config
        for index in range(config.n_layers):
            mixer = build_mixer(config, index, linear_attention)
            self.layers.append(Block(config.d_model, mixer, config.mlp_hidden, config.norm_eps))


def build(config: dict) -> BasedLM:
    parsed = BasedConfig.model_validate(config)
    if parsed.fixed_decay or parsed.use_decay_proj:
        from .decay import make_decayed

        return BasedLM(parsed, linear_attention=make_decayed(LinearAttention))
    return BasedLM(parsed)
