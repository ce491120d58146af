"""Gated linear attention (GLA, data-dependent per-key-channel decay) adapter with
flash-linear-attention's ``GLAForCausalLM`` key names, for the ``fla-hub/gla-*`` checkpoints; the
recurrence itself is the op ``ops.gla``. Tested by ``tests/test_models_ssm.py`` (fast vs
reference recurrence vs fla's ``naive_recurrent_gla``, parallel vs recurrent, padded batches, and
a full fla model with its reference op on CPU)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..ops.gla import gla, gla_naive, gla_step
from .layers import RMSNorm, resolve_mask

FAMILY = "gla"

# Constructor defaults of fla's GatedLinearAttention that GLAConfig does not expose.
GATE_LOGIT_NORMALIZER = 16
GATE_LOW_RANK_DIM = 16


class GLAConfig(BaseModel):
    """fla ``GLAConfig`` (config.json names). Options the fla-hub checkpoints do not use (short
    convs, feature maps, GQA, value gates, hybrid attention) are rejected rather than half-built.
    ``rms_norm_eps`` is the older fla name of ``norm_eps``."""

    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(2048, gt=0)
    num_hidden_layers: int = Field(24, gt=0)
    num_heads: int = Field(4, gt=0)
    vocab_size: int = Field(32000, gt=0)
    expand_k: float = Field(0.5, gt=0)
    expand_v: float = Field(1.0, gt=0)
    hidden_ratio: int | None = 4
    intermediate_size: int | None = None
    norm_eps: float | None = None
    rms_norm_eps: float | None = None
    clamp_min: float | None = None
    tie_word_embeddings: bool = False
    elementwise_affine: Literal[True] = True
    hidden_act: Literal["swish"] = "swish"
    use_output_gate: Literal[True] = True
    use_gk: Literal[True] = True
    use_gv: Literal[False] = False
    use_short_conv: Literal[False] = False
    feature_map: None = None
    attn: None = None
    attnres_block_size: None = None
    num_kv_heads: int | None = None
    # Kernel choices, training options and Hugging Face bookkeeping: no effect on the function.
    attn_mode: str = "chunk"
    conv_size: int = 4
    share_conv_kernel: bool = True
    fuse_norm: bool = True
    fuse_swiglu: bool = True
    fuse_cross_entropy: bool = True
    fuse_linear_cross_entropy: bool = False
    use_l2warp: bool = False
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    architectures: list[str] | None = None
    model_type: Literal["gla"] = "gla"
    torch_dtype: str | None = None
    dtype: str | None = None
    transformers_version: str | None = None

    @model_validator(mode="after")
    def _check_dims(self) -> GLAConfig:
        if self.num_kv_heads not in (None, self.num_heads):
            raise ValueError(f"num_kv_heads={self.num_kv_heads}: grouped keys are not supported")
        for name, dim in (("key", self.key_dim), ("value", self.value_dim)):
            if dim % self.num_heads:
                raise ValueError(f"{name} dim {dim} not divisible by num_heads={self.num_heads}")
        for name, ratio in (("expand_k", self.expand_k), ("expand_v", self.expand_v)):
            if not math.isclose(self.hidden_size * ratio, round(self.hidden_size * ratio)):
                raise ValueError(f"hidden_size * {name} must be an integer, got {name}={ratio}")
        return self

    @property
    def eps(self) -> float:
        if self.norm_eps is not None:
            return self.norm_eps
        return self.rms_norm_eps if self.rms_norm_eps is not None else 1e-6

    @property
    def key_dim(self) -> int:
        return round(self.hidden_size * self.expand_k)

    @property
    def value_dim(self) -> int:
        return round(self.hidden_size * self.expand_v)

    @property
    def mlp_size(self) -> int:
        """fla GatedMLP: 2/3 * hidden_ratio * hidden rounded up to a multiple of 256."""
        if self.intermediate_size is not None:
            return self.intermediate_size
        raw = int(self.hidden_size * (self.hidden_ratio or 4) * 2 / 3)
        return 256 * math.ceil(raw / 256)


# fla-hub/gla-*, from their config.json: 1.3B hidden 2048 / 24 layers / 4 heads, 2.7B hidden
# 2560 / 32 layers / 5 heads; both a 32k vocabulary and untied embeddings.
PAPER_CONFIGS: dict[str, dict] = {
    "fla-hub/gla-1.3B-100B": {"hidden_size": 2048, "num_hidden_layers": 24, "num_heads": 4},
    "fla-hub/gla-2.7B-100B": {"hidden_size": 2560, "num_hidden_layers": 32, "num_heads": 5},
}


# ---------------------------------------------------------------------------------------------
# Modules (fla names)
# ---------------------------------------------------------------------------------------------


class GatedRMSNormSwish(nn.Module):
    """fla ``FusedRMSNormGated``: rmsnorm(o) * weight * silu(g), per head."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, o: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        o32 = o.float()
        normed = o32 * torch.rsqrt(o32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float() * F.silu(g.float())).to(g.dtype)


class GatedLinearAttention(nn.Module):
    """Pad positions get k = 0 and log-gate 0 (decay 1), so they leave the state untouched."""

    def __init__(self, cfg: GLAConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.num_heads, self.clamp_min = cfg.num_heads, cfg.clamp_min
        self.head_k_dim = cfg.key_dim // cfg.num_heads
        self.head_v_dim = cfg.value_dim // cfg.num_heads
        self.q_proj = nn.Linear(h, cfg.key_dim, bias=False)
        self.k_proj = nn.Linear(h, cfg.key_dim, bias=False)
        self.v_proj = nn.Linear(h, cfg.value_dim, bias=False)
        self.g_proj = nn.Linear(h, cfg.value_dim, bias=False)
        self.gk_proj = nn.Sequential(
            nn.Linear(h, GATE_LOW_RANK_DIM, bias=False),
            nn.Linear(GATE_LOW_RANK_DIM, cfg.key_dim, bias=True),
        )
        self.o_proj = nn.Linear(cfg.value_dim, h, bias=False)
        self.g_norm_swish_gate = GatedRMSNormSwish(self.head_v_dim, cfg.eps)
        self.use_chunked = True

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        heads = lambda t, d: t.unflatten(-1, (self.num_heads, d)).float()  # noqa: E731
        q = heads(self.q_proj(x), self.head_k_dim)
        k = heads(self.k_proj(x), self.head_k_dim)
        v = heads(self.v_proj(x), self.head_v_dim)
        g = F.logsigmoid(heads(self.gk_proj(x), self.head_k_dim)) / GATE_LOGIT_NORMALIZER
        if self.clamp_min is not None:
            g = g.clamp(min=self.clamp_min)
        return q, k, v, g

    def _output(self, o: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        gate = self.g_proj(x).unflatten(-1, (self.num_heads, self.head_v_dim))
        return self.o_proj(self.g_norm_swish_gate(o, gate).flatten(-2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, D], mask [B, T] bool -> (out [B, T, D], state [B, H, K, V] float32)."""
        q, k, v, g = self._project(x)
        keep = mask[:, :, None, None]
        k, g = k * keep, g * keep
        S0 = q.new_zeros(q.shape[0], self.num_heads, self.head_k_dim, self.head_v_dim)
        if self.use_chunked:
            o, S = gla(q, k, v, g, S0)
        else:
            o, S = (t.float() for t in gla_naive(q, k, v, g, S0))
        return self._output(o, x), S

    def step(self, x: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, D] one token -> (out [B, D], state)."""
        q, k, v, g = self._project(x)
        o, S = gla_step(q, k, v, g, S)
        return self._output(o, x), S


class GLAMLP(nn.Module):
    def __init__(self, cfg: GLAConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.mlp_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.mlp_size, bias=False)
        self.down_proj = nn.Linear(cfg.mlp_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class GLABlock(nn.Module):
    def __init__(self, cfg: GLAConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden_size, eps=cfg.eps)
        self.attn = GatedLinearAttention(cfg)
        self.mlp_norm = RMSNorm(cfg.hidden_size, eps=cfg.eps)
        self.mlp = GLAMLP(cfg)


class GLAModel(nn.Module):
    def __init__(self, cfg: GLAConfig) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(GLABlock(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, eps=cfg.eps)


@dataclass
class GLAState:
    """Per-layer matrix states stacked on dim 0: [L, B, H, K, V], float32."""

    S: torch.Tensor

    def nbytes(self) -> int:
        return self.S.nbytes


class GLAForCausalLM(nn.Module):
    family = FAMILY

    def __init__(self, cfg: GLAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = cfg.vocab_size
        self.model = GLAModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embeddings.weight

    def _run(
        self, input_ids: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, GLAState]:
        mask = resolve_mask(input_ids, mask)
        x = self.model.embeddings(input_ids)
        states = []
        for layer in self.model.layers:
            out, S = layer.attn(layer.attn_norm(x), mask)
            x = x + out
            x = x + layer.mlp(layer.mlp_norm(x))
            states.append(S)
        return self.lm_head(self.model.norm(x)), GLAState(torch.stack(states))

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._run(input_ids, mask)[0]

    def prefill(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, GLAState]:
        logits, state = self._run(input_ids, mask)
        return logits[:, -1], state

    def step(self, token_ids: torch.Tensor, state: GLAState) -> tuple[torch.Tensor, GLAState]:
        if token_ids.dim() != 1:
            raise ValueError(f"token_ids must be [B], got shape {tuple(token_ids.shape)}")
        x = self.model.embeddings(token_ids)
        states = []
        for i, layer in enumerate(self.model.layers):
            out, S = layer.attn.step(layer.attn_norm(x), state.S[i])
            x = x + out
            x = x + layer.mlp(layer.mlp_norm(x))
            states.append(S)
        return self.lm_head(self.model.norm(x)), GLAState(torch.stack(states))

    def state_size_bytes(self, batch_size: int = 1, prompt_len: int = 0) -> int:
        """batch x num_hidden_layers x key_dim x value_dim / num_heads x 4 (float32 states);
        constant in ``prompt_len``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        c = self.cfg
        return batch_size * c.num_hidden_layers * c.key_dim * c.value_dim // c.num_heads * 4


def build(config: dict[str, Any]) -> GLAForCausalLM:
    """config: an fla GLA config.json dict -> model implementing ``LanguageModel``."""
    return GLAForCausalLM(GLAConfig.model_validate(config))
