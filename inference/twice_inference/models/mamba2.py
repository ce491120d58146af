"""Mamba-2 (SSD, scalar-times-identity A per head) adapter with mamba_ssm's ``Mamba2`` key names,
on the residual backbone of ``mamba.py``; the scan itself is the op ``ops.ssd``. Tested by
``tests/test_models_ssm.py`` (fast vs reference SSD, parallel vs recurrent, padded batches,
logits against transformers' ``Mamba2ForCausalLM``)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..ops.ssd import ssd, ssd_naive, ssd_step
from .layers import ShortConv
from .mamba import BackboneConfig, SSMLanguageModel, SSMMixer

FAMILY = "mamba2"


class Mamba2SSMConfig(BaseModel):
    """``ssm_cfg`` of a Mamba-2 checkpoint (mamba_ssm ``Mamba2`` constructor arguments).
    ``dt_limit`` is (min, max) with ``None`` for an absent upper bound (JSON has no infinity)."""

    model_config = ConfigDict(extra="forbid")

    layer: Literal["Mamba2"]
    d_state: int = Field(128, gt=0)
    d_conv: int = Field(4, gt=1)
    expand: int = Field(2, gt=0)
    headdim: int = Field(64, gt=0)
    ngroups: int = Field(1, gt=0)
    chunk_size: int = Field(256, gt=0)
    rmsnorm: Literal[True] = True
    norm_before_gate: Literal[False] = False
    D_has_hdim: bool = False
    conv_bias: bool = True
    bias: bool = False
    dt_limit: tuple[float, float | None] = (0.0, None)


class Mamba2Config(BackboneConfig):
    """mamba_ssm ``MambaConfig`` with ``ssm_cfg.layer == "Mamba2"``."""

    ssm_cfg: Mamba2SSMConfig
    pad_vocab_size_multiple: int = Field(16, gt=0)

    @property
    def nheads(self) -> int:
        return self.d_inner // self.ssm_cfg.headdim

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.ssm_cfg.ngroups * self.ssm_cfg.d_state


# state-spaces/mamba2-*: same d_model/n_layer pattern as Mamba-1 (the paper's model table),
# mamba_ssm Mamba2 defaults (d_state 128, headdim 64, ngroups 1), GPT-NeoX vocabulary padded to a
# multiple of 16. The vocab padding multiple is [UNCONFIRMED] against the real config.json.
_MAMBA2_SSM = {"layer": "Mamba2"}
PAPER_CONFIGS: dict[str, dict] = {
    f"state-spaces/mamba2-{size}": {
        "d_model": d_model,
        "n_layer": n_layer,
        "vocab_size": 50277,
        "ssm_cfg": dict(_MAMBA2_SSM),
    }
    for size, d_model, n_layer in [
        ("130m", 768, 24),
        ("370m", 1024, 48),
        ("1.3b", 2048, 48),
        ("2.7b", 2560, 64),
    ]
}


# ---------------------------------------------------------------------------------------------
# Mixer
# ---------------------------------------------------------------------------------------------


class GatedGroupRMSNorm(nn.Module):
    """mamba_ssm ``RMSNormGated`` with norm_before_gate=False: rmsnorm(y * silu(z)) per group of
    d_inner / ngroups channels, then the weight."""

    def __init__(self, dim: int, group_size: int, eps: float) -> None:
        super().__init__()
        self.group_size, self.eps = group_size, eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        g = (y.float() * F.silu(z.float())).unflatten(-1, (-1, self.group_size))
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps)
        return (g.flatten(-2) * self.weight.float()).to(y.dtype)


class Mamba2Mixer(SSMMixer):
    """in_proj -> [z | xBC | dt]; causal conv on xBC; SSD; gated group RMSNorm; out_proj.
    Padding: the conv input is zeroed and dt forced to 0 at pad positions, so the state keeps
    its value (exp(0 A) = 1, 0 x B = 0)."""

    def __init__(self, cfg: Mamba2Config) -> None:
        super().__init__()
        s = cfg.ssm_cfg
        if cfg.d_inner % s.headdim:
            raise ValueError(f"d_inner {cfg.d_inner} must be a multiple of headdim {s.headdim}")
        if cfg.nheads % s.ngroups:
            raise ValueError(f"nheads {cfg.nheads} must be a multiple of ngroups {s.ngroups}")
        self.d_inner, self.nheads, self.headdim = cfg.d_inner, cfg.nheads, s.headdim
        self.ngroups, self.d_state, self.chunk_size = s.ngroups, s.d_state, s.chunk_size
        self.dt_min, self.dt_max = s.dt_limit
        d_in_proj = 2 * self.d_inner + 2 * s.ngroups * s.d_state + self.nheads
        self.in_proj = nn.Linear(cfg.d_model, d_in_proj, bias=s.bias)
        self.conv1d = ShortConv(cfg.conv_dim, s.d_conv, bias=s.conv_bias)
        self.dt_bias = nn.Parameter(torch.zeros(self.nheads))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, self.nheads + 1, dtype=torch.float32)))
        self.D = nn.Parameter(torch.ones(self.d_inner if s.D_has_hdim else self.nheads))
        # mamba_ssm fixes this norm's eps at 1e-5 whatever norm_epsilon says.
        self.norm = GatedGroupRMSNorm(self.d_inner, self.d_inner // s.ngroups, eps=1e-5)
        self.out_proj = nn.Linear(self.d_inner, cfg.d_model, bias=s.bias)
        self.use_chunked_scan = True

    def _split(self, zxbcdt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return zxbcdt.split([self.d_inner, self.conv1d.weight.shape[0], self.nheads], dim=-1)

    def _ssm_inputs(self, xBC: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Post-conv xBC and raw dt -> x [..., H, P], dt [..., H], B, C [..., H, N] (float32)."""
        gn = self.ngroups * self.d_state
        x, B, C = F.silu(xBC).split([self.d_inner, gn, gn], dim=-1)
        per_group = self.nheads // self.ngroups
        B = B.unflatten(-1, (self.ngroups, self.d_state)).repeat_interleave(per_group, dim=-2)
        C = C.unflatten(-1, (self.ngroups, self.d_state)).repeat_interleave(per_group, dim=-2)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        if self.dt_min > 0.0 or self.dt_max is not None:
            dt = dt.clamp(min=self.dt_min, max=self.dt_max)
        return x.unflatten(-1, (self.nheads, self.headdim)), dt, B.float(), C.float()

    def _skip(self, x: torch.Tensor) -> torch.Tensor:
        D = self.D.float()
        return x * (D.view(self.nheads, self.headdim) if D.numel() == self.d_inner else D[:, None])

    def forward(
        self, hidden: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """hidden [B, T, D], mask [B, T] bool -> (out, conv state [B, C, K-1], ssm [B, H, P, N])."""
        z, xBC, dt = self._split(self.in_proj(hidden))
        conv_state = self.conv1d.tail_state(xBC, mask)
        x, dt, B, C = self._ssm_inputs(self.conv1d(xBC, mask), dt)
        dt = dt * mask[..., None]
        A = -torch.exp(self.A_log.float())
        xf = x.float()
        h0 = xf.new_zeros(x.shape[0], self.nheads, self.headdim, self.d_state)
        if self.use_chunked_scan:
            y, h = ssd(xf, dt, A, B, C, h0, self.chunk_size)
        else:
            y, h = (t.float() for t in ssd_naive(xf, dt, A, B, C, h0))
        y = (y + self._skip(xf)).flatten(-2).to(hidden.dtype)
        return self.out_proj(self.norm(y, z)), conv_state, h

    def step(
        self, hidden: torch.Tensor, conv_state: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """hidden [B, D] one token -> (out [B, D], conv state, ssm state)."""
        z, xBC, dt = self._split(self.in_proj(hidden))
        xBC, conv_state = self.conv1d.step(xBC, conv_state)
        x, dt, B, C = self._ssm_inputs(xBC, dt)
        A = -torch.exp(self.A_log.float())
        xf = x.float()
        y, h = ssd_step(xf, dt, A, B, C, h)
        y = y + self._skip(xf)
        return self.out_proj(self.norm(y.flatten(-2).to(hidden.dtype), z)), conv_state, h


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def mamba2_state_bytes_per_layer(cfg: Mamba2Config, act_bytes: int) -> int:
    """One layer, one sequence: SSM state nheads x headdim x d_state (= d_inner x d_state) in
    float32 plus the conv state (d_inner + 2 ngroups d_state) x (d_conv - 1) in the activation
    dtype. Spec 1.1 counts only the SSM part: 2 d_model x 128 elements per layer."""
    s = cfg.ssm_cfg
    return cfg.d_inner * s.d_state * 4 + cfg.conv_dim * (s.d_conv - 1) * act_bytes


def build(config: dict) -> SSMLanguageModel:
    """config: a mamba_ssm Mamba-2 config.json dict -> model implementing ``LanguageModel``.

    state_size_bytes = batch x n_layer x (d_inner x d_state x 4
                                          + (d_inner + 2 ngroups d_state) x (d_conv-1) x bytes)."""
    cfg = Mamba2Config.model_validate(config)
    return SSMLanguageModel(
        family=FAMILY,
        d_model=cfg.d_model,
        n_layer=cfg.n_layer,
        vocab=cfg.padded_vocab_size,
        make_mixer=lambda: Mamba2Mixer(cfg),
        rms_norm=cfg.rms_norm,
        eps=cfg.norm_epsilon,
        residual_in_fp32=cfg.residual_in_fp32,
        tie_embeddings=cfg.tie_embeddings,
        bytes_per_layer=lambda act_bytes: mamba2_state_bytes_per_layer(cfg, act_bytes),
    )
