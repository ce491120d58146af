"""Mamba-1 (selective scan) adapter, laid out like mamba_ssm's ``MambaLMHeadModel`` so original
checkpoints load with the identity key mapping; also hosts the residual backbone and the fixed-size
state that Mamba-2 reuses. The scan itself is the op ``ops.selective_scan``. Tested by
``tests/test_models_ssm.py`` (fast vs reference scan, parallel vs recurrent, padded batches, and
logits against ``transformers.MambaForCausalLM``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..ops.selective_scan import selective_scan, selective_scan_naive, selective_scan_step
from .layers import RMSNorm, ShortConv, modules_of, resolve_mask

FAMILY = "mamba"


# ---------------------------------------------------------------------------------------------
# Configs (mamba_ssm's names, as in the checkpoints' config.json)
# ---------------------------------------------------------------------------------------------


class MambaSSMConfig(BaseModel):
    """``ssm_cfg`` of a Mamba-1 checkpoint (mamba_ssm ``Mamba`` constructor arguments)."""

    model_config = ConfigDict(extra="forbid")

    layer: Literal["Mamba1"] = "Mamba1"
    d_state: int = Field(16, gt=0)
    d_conv: int = Field(4, gt=1)
    expand: int = Field(2, gt=0)
    dt_rank: int | Literal["auto"] = "auto"
    conv_bias: bool = True
    bias: bool = False


class BackboneConfig(BaseModel):
    """The fields mamba_ssm's ``MambaConfig`` shares between Mamba-1 and Mamba-2 checkpoints;
    each family adds its ``ssm_cfg``. ``fused_add_norm`` only selects a CUDA kernel upstream, so
    it is accepted and has no effect here; attention hybrids and MLP layers are rejected."""

    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(gt=0)
    n_layer: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    d_intermediate: Literal[0] = 0
    attn_layer_idx: list[int] = Field(default_factory=list, max_length=0)
    attn_cfg: dict = Field(default_factory=dict, max_length=0)
    rms_norm: bool = True
    norm_epsilon: float = 1e-5
    residual_in_fp32: bool = True
    fused_add_norm: bool = True
    pad_vocab_size_multiple: int = Field(8, gt=0)
    tie_embeddings: bool = True

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return m * math.ceil(self.vocab_size / m)

    @property
    def d_inner(self) -> int:
        return self.ssm_cfg.expand * self.d_model  # type: ignore[attr-defined]


class MambaConfig(BackboneConfig):
    """mamba_ssm ``MambaConfig`` of a Mamba-1 checkpoint."""

    ssm_cfg: MambaSSMConfig = Field(default_factory=lambda: MambaSSMConfig.model_validate({}))

    @property
    def dt_rank(self) -> int:
        rank = self.ssm_cfg.dt_rank
        return math.ceil(self.d_model / 16) if rank == "auto" else rank


# The paper's Mamba-1 checkpoints. state-spaces/*: d_model/n_layer from the paper's model table, the
# rest mamba_ssm defaults with the GPT-NeoX vocabulary (50277, padded to 50280). The hazy ones
# follow the paper's App. C (46 layers, d_state 16) with the GPT-2 vocabulary; their exact
# vocab_size and padding are [UNCONFIRMED] until a config.json is read. mamba-360M-30B comes to
# 358.2M parameters, the paper's 358M.
_NEOX_VOCAB = 50277
_GPT2_VOCAB = 50257
PAPER_CONFIGS: dict[str, dict] = {
    "state-spaces/mamba-130m": {"d_model": 768, "n_layer": 24, "vocab_size": _NEOX_VOCAB},
    "state-spaces/mamba-370m": {"d_model": 1024, "n_layer": 48, "vocab_size": _NEOX_VOCAB},
    "state-spaces/mamba-1.4b": {"d_model": 2048, "n_layer": 48, "vocab_size": _NEOX_VOCAB},
    "state-spaces/mamba-2.8b": {"d_model": 2560, "n_layer": 64, "vocab_size": _NEOX_VOCAB},
    "hazyresearch/mamba-1b": {"d_model": 2048, "n_layer": 46, "vocab_size": _GPT2_VOCAB},
    "hazyresearch/mamba-1b-50b": {"d_model": 2048, "n_layer": 46, "vocab_size": _GPT2_VOCAB},
    "hazyresearch/mamba-360M-30B": {"d_model": 1024, "n_layer": 46, "vocab_size": _GPT2_VOCAB},
}


# ---------------------------------------------------------------------------------------------
# Mixer
# ---------------------------------------------------------------------------------------------


class SSMMixer(nn.Module):
    """What the residual stack needs of a Mamba-1 or Mamba-2 mixer: a whole-sequence pass and a
    one-token step, both returning (output, conv state, ssm state)."""

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def step(
        self, x: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class MambaMixer(SSMMixer):
    """mamba_ssm ``Mamba`` block: in_proj -> causal conv -> selective scan -> gate -> out_proj.
    Padding: the conv input is zeroed and dt forced to 0 at pad positions, so exp(dt A) = 1 and
    dt x B = 0 leave the state exactly as it was."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        s = cfg.ssm_cfg
        self.d_inner, self.d_state, self.dt_rank = cfg.d_inner, s.d_state, cfg.dt_rank
        self.in_proj = nn.Linear(cfg.d_model, 2 * self.d_inner, bias=s.bias)
        self.conv1d = ShortConv(self.d_inner, s.d_conv, bias=s.conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * s.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # S4D-real init, as mamba_ssm; real checkpoints overwrite it.
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, s.d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1)
        )
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, cfg.d_model, bias=s.bias)
        self.use_chunked_scan = True

    def _ssm_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dt_raw, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt_raw).float())
        return dt, B.float(), C.float()

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """hidden [B, T, D], mask [B, T] bool -> (out [B, T, D], conv state, ssm state)."""
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        conv_state = self.conv1d.tail_state(x, mask)
        x = F.silu(self.conv1d(x, mask))
        dt, B, C = self._ssm_inputs(x)
        dt = dt * mask[..., None]
        A = -torch.exp(self.A_log.float())
        h0 = x.new_zeros(x.shape[0], self.d_inner, self.d_state, dtype=torch.float32)
        if self.use_chunked_scan:
            y, h = selective_scan(x, dt, A, B, C, h0)
        else:
            y, h = (t.float() for t in selective_scan_naive(x, dt, A, B, C, h0))
        y = (y + x.float() * self.D.float()).to(x.dtype) * F.silu(z)
        return self.out_proj(y), conv_state, h

    def step(
        self, hidden: torch.Tensor, conv_state: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """hidden [B, D] one token -> (out [B, D], conv state, ssm state)."""
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        x, conv_state = self.conv1d.step(x, conv_state)
        x = F.silu(x)
        dt, B, C = self._ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        y, h = selective_scan_step(x, dt, A, B, C, h)
        y = y + x.float() * self.D.float()
        return self.out_proj(y.to(x.dtype) * F.silu(z)), conv_state, h


# ---------------------------------------------------------------------------------------------
# Backbone + LM head (shared with Mamba-2)
# ---------------------------------------------------------------------------------------------


@dataclass
class SSMState:
    """Per-layer conv and SSM states stacked on dim 0: conv [L, B, C, K-1], ssm [L, B, ...]."""

    conv: torch.Tensor
    ssm: torch.Tensor

    def nbytes(self) -> int:
        return self.conv.nbytes + self.ssm.nbytes


class Block(nn.Module):
    def __init__(self, d_model: int, mixer: SSMMixer, rms_norm: bool, eps: float) -> None:
        super().__init__()
        self.norm = RMSNorm(d_model, eps=eps) if rms_norm else nn.LayerNorm(d_model, eps=eps)
        self.mixer = mixer


class Backbone(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_layer: int,
        vocab: int,
        make_mixer: Callable[[], SSMMixer],
        rms_norm: bool,
        eps: float,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList(
            Block(d_model, make_mixer(), rms_norm, eps) for _ in range(n_layer)
        )
        self.norm_f = RMSNorm(d_model, eps=eps) if rms_norm else nn.LayerNorm(d_model, eps=eps)


class SSMLanguageModel(nn.Module):
    """Pre-norm residual stack of SSM mixers (mamba_ssm's ``MambaLMHeadModel`` layout). The residual
    stream is kept in float32 when ``residual_in_fp32``, as upstream does under half precision."""

    def __init__(
        self,
        family: str,
        d_model: int,
        n_layer: int,
        vocab: int,
        make_mixer: Callable[[], SSMMixer],
        rms_norm: bool,
        eps: float,
        residual_in_fp32: bool,
        tie_embeddings: bool,
        bytes_per_layer: Callable[[int], int],
    ) -> None:
        super().__init__()
        self.family = family
        self.vocab_size = vocab  # the logits width (vocabulary padded as upstream)
        self.residual_in_fp32 = residual_in_fp32
        self.backbone = Backbone(d_model, n_layer, vocab, make_mixer, rms_norm, eps)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        if tie_embeddings:
            self.lm_head.weight = self.backbone.embedding.weight
        self._bytes_per_layer = bytes_per_layer

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() if self.residual_in_fp32 else x

    def _normed(self, norm: nn.Module, residual: torch.Tensor) -> torch.Tensor:
        """Normalise the (possibly float32) residual, then cast to the weights' dtype, as
        mamba_ssm's fused add+norm does; nn.LayerNorm needs its input in its own dtype."""
        dtype = self.lm_head.weight.dtype
        if isinstance(norm, RMSNorm):
            return norm(residual).to(dtype)
        return norm(residual.to(dtype))

    def _head(self, residual: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self._normed(self.backbone.norm_f, residual))

    def _run(
        self, input_ids: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, SSMState]:
        mask = resolve_mask(input_ids, mask)
        residual = self._residual(self.backbone.embedding(input_ids))
        convs, ssms = [], []
        for layer in modules_of(self.backbone.layers, Block):
            out, conv, ssm = layer.mixer(self._normed(layer.norm, residual), mask)
            residual = residual + out
            convs.append(conv)
            ssms.append(ssm)
        return residual, SSMState(torch.stack(convs), torch.stack(ssms))

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        residual, _ = self._run(input_ids, mask)
        return self._head(residual)

    def prefill(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, SSMState]:
        residual, state = self._run(input_ids, mask)
        return self._head(residual[:, -1]), state

    def step(self, token_ids: torch.Tensor, state: SSMState) -> tuple[torch.Tensor, SSMState]:
        if token_ids.dim() != 1:
            raise ValueError(f"token_ids must be [B], got shape {tuple(token_ids.shape)}")
        residual = self._residual(self.backbone.embedding(token_ids))
        convs, ssms = [], []
        for i, layer in enumerate(modules_of(self.backbone.layers, Block)):
            out, conv, ssm = layer.mixer.step(
                self._normed(layer.norm, residual), state.conv[i], state.ssm[i]
            )
            residual = residual + out
            convs.append(conv)
            ssms.append(ssm)
        return self._head(residual), SSMState(torch.stack(convs), torch.stack(ssms))

    def state_size_bytes(self, batch_size: int = 1, prompt_len: int = 0) -> int:
        """Bytes of the state ``prefill`` returns; constant in ``prompt_len``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return (
            batch_size
            * len(self.backbone.layers)
            * self._bytes_per_layer(self.lm_head.weight.element_size())
        )


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def mamba_state_bytes_per_layer(cfg: MambaConfig, act_bytes: int) -> int:
    """One layer, one sequence: the SSM state d_inner x d_state in float32 (the scan runs in
    float32) plus the conv state d_inner x (d_conv - 1) in the activation dtype.
    Spec 1.1 counts only the SSM part: 2 d_model x d_state elements per layer."""
    s = cfg.ssm_cfg
    return cfg.d_inner * s.d_state * 4 + cfg.d_inner * (s.d_conv - 1) * act_bytes


def build(config: dict) -> SSMLanguageModel:
    """config: a mamba_ssm config.json dict -> model implementing ``LanguageModel``.

    state_size_bytes = batch x n_layer x (d_inner x d_state x 4 + d_inner x (d_conv-1) x bytes),
    bytes being the parameter dtype's element size."""
    cfg = MambaConfig.model_validate(config)
    return SSMLanguageModel(
        family=FAMILY,
        d_model=cfg.d_model,
        n_layer=cfg.n_layer,
        vocab=cfg.padded_vocab_size,
        make_mixer=lambda: MambaMixer(cfg),
        rms_norm=cfg.rms_norm,
        eps=cfg.norm_epsilon,
        residual_in_fp32=cfg.residual_in_fp32,
        tie_embeddings=cfg.tie_embeddings,
        bytes_per_layer=lambda act_bytes: mamba_state_bytes_per_layer(cfg, act_bytes),
    )
