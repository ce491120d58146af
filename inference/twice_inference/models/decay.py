"""Based's fixed per-head decay with an input-dependent output scale, as ``based-360m-30b`` was
trained (its config: ``fixed_decay: True``, ``decay_const: -3``, ``alt_mixer.use_decay_proj:
True``).

Head h decays by gamma_h = 1 - 2^(decay_const - h) per step. With a decay projection dt = x W
(one scalar per head and position, no bias), the linear-attention output is

  y_i = dt_i * sum_{j<=i} gamma^(i-j) (phi(q_i) . phi(k_j)) v_j
        / (phi(q_i) . sum_{j<=i} phi(k_j) + eps)

The normaliser is not decayed and not scaled (the training config's ``decay_denom: False``). The
recurrent form carries s_i = gamma s_{i-1} + phi(k_i)^T v_i and the plain z_i. (The released
recurrent step adds phi(k_i)^T v_i twice when decay is on; we follow the trained parallel form,
which the recurrence here reproduces exactly.) Tested by ``tests/test_decay.py`` against a float64
loop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.feature_map import taylor_feature_map
from ..ops.linear_attention.chunk import LinearAttentionState, masked_features

# 128: at 8-16k tokens the in-chunk quadratic part and the [N, N] carry are then about even
DECAY_CHUNK = 128


def log_decay(heads: int, decay_const: float) -> torch.Tensor:
    """[H] float32: log(1 - 2^(decay_const - h))."""
    return torch.log(1 - 2.0 ** (decay_const - torch.arange(heads, dtype=torch.float64))).float()


def decay_options(config_json: dict[str, Any]) -> dict[str, Any]:
    """The three options as a hazy checkpoint's config.json spells them (the projection flag sits
    in the linear-attention mixer's block, ``alt_mixer``)."""
    options: dict[str, Any] = {}
    if "fixed_decay" in config_json:
        options["fixed_decay"] = bool(config_json["fixed_decay"])
    if "decay_const" in config_json:
        options["decay_const"] = float(config_json["decay_const"])
    mixer = config_json.get("alt_mixer")
    if isinstance(mixer, dict) and "use_decay_proj" in mixer:
        options["use_decay_proj"] = bool(mixer["use_decay_proj"])
    return options


def checkpoint_decay_options(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        return {}
    return decay_options(json.loads(path.read_text(encoding="utf-8")))


def decayed_linear_attention(
    phi_q: torch.Tensor,
    phi_k: torch.Tensor,
    v: torch.Tensor,
    log_gamma: torch.Tensor,
    scale: torch.Tensor | None,
    eps: float,
    chunk: int = DECAY_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float32 features [B, H, T, F], v [B, H, T, Dv], log_gamma [H], scale [B, H, T] or None ->
    (y [B, H, T, Dv], decayed state s [B, H, F, Dv], plain z [B, H, F]).

    Chunked, with every chunk computed at once: quadratic inside a chunk; across chunks, the
    decayed state entering chunk c, sum_{c' < c} gamma^(C (c - 1 - c')) (chunk c's own sum), is
    one [N, N] x [N, F Dv] product per head. A loop over chunks (the first form) launched ~15
    kernels per 64 tokens, which bounded the 360M model's prefill by launches. The sequence is
    left-padded to whole chunks with zero features and values: they add nothing to any sum, and
    padding in front keeps the decay between the last token and the final state exact."""
    b, h, t, f = phi_q.shape
    dv = v.shape[-1]
    pad = (-t) % chunk
    if pad:
        phi_q, phi_k, v = (F.pad(x, (0, 0, pad, 0)) for x in (phi_q, phi_k, v))
        if scale is not None:
            scale = F.pad(scale, (pad, 0))
    n = (t + pad) // chunk
    qc = phi_q.reshape(b, h, n, chunk, f)
    kc = phi_k.reshape(b, h, n, chunk, f)
    vc = v.reshape(b, h, n, chunk, dv)
    lg = log_gamma.to(phi_q)[:, None, None]  # [H, 1, 1]
    idx = torch.arange(chunk, device=phi_q.device, dtype=phi_q.dtype)
    gap = idx[:, None] - idx[None, :]
    causal = gap >= 0
    within = torch.where(causal, torch.exp(lg * gap.clamp(min=0)), 0.0)  # [H, C, C]: gamma^(i-j)
    scores = qc @ kc.transpose(-1, -2)  # [B, H, N, C, C]
    num = (scores * within[None, :, None]) @ vc
    # the normaliser is not decayed: plain causal sums
    chunk_z = kc.sum(dim=3)  # [B, H, N, F]
    z_before = chunk_z.cumsum(dim=2) - chunk_z
    den = (scores * causal).sum(dim=-1) + (qc @ z_before[..., None])[..., 0]
    # each chunk's own decayed sum, as seen from its last position: gamma^(C-1-j) phi_k_j^T v_j
    to_end = torch.exp(lg * (chunk - 1 - idx)[None, :, None])[None, :, None]  # [1, H, 1, C, 1]
    chunk_s = ((kc * to_end).transpose(-1, -2) @ vc).reshape(b, h, n, f * dv)
    c = torch.arange(n, device=phi_q.device, dtype=phi_q.dtype)
    lag = c[:, None] - 1 - c[None, :]  # c - 1 - c'
    carry = torch.where(lag >= 0, torch.exp(lg * chunk * lag.clamp(min=0)), 0.0)  # [H, N, N]
    s_before = (carry[None] @ chunk_s).reshape(b, h, n, f, dv)
    from_carry = torch.exp(lg * (idx + 1)[None, :, None])[None, :, None]  # gamma^(i+1)
    num = num + from_carry * (qc @ s_before)
    if scale is not None:
        num = num * scale.reshape(b, h, n, chunk, 1)
    y = (num / (den[..., None] + eps)).reshape(b, h, n * chunk, dv)[:, :, pad:]
    to_final = torch.exp(lg[:, 0] * chunk * (n - 1 - c))  # [H, N]: gamma^(C (N-1-c))
    s = (to_final[None, :, None] @ chunk_s)[:, :, 0].reshape(b, h, f, dv)
    return y, s, chunk_z.sum(dim=2)


def make_decayed(base: type) -> type:
    """A subclass of Based's ``LinearAttention`` with the decay (kept out of based.py)."""

    class Decayed(base):  # type: ignore[misc, valid-type]
        def __init__(self, config) -> None:
            super().__init__(config)
            if not config.fixed_decay:
                raise ValueError("use_decay_proj without fixed_decay is not a trained setting")
            self.register_buffer(
                "log_gamma", log_decay(self.heads, config.decay_const), persistent=False
            )
            self.decay_proj = (
                nn.Linear(config.d_model, self.heads, bias=False) if config.use_decay_proj else None
            )

        def _scale(self, x: torch.Tensor) -> torch.Tensor | None:
            if self.decay_proj is None:
                return None
            return self.decay_proj(x).float().transpose(1, 2)  # [B, H, T]

        def _parallel(self, x, mask):
            q, k, v = self._qkv(x)
            phi_q, phi_k, v32 = masked_features(q, k, v, mask)
            return decayed_linear_attention(
                phi_q, phi_k, v32, self.log_gamma, self._scale(x), self.eps
            )

        def forward(self, x, mask, positions):
            y, _, _ = self._parallel(x, mask)
            return self._out(y, x)

        def prefill(self, x, mask, positions):
            y, s, z = self._parallel(x, mask)
            return self._out(y, x), LinearAttentionState(s, z)

        def step(self, x, positions, state):
            q, k, v = self._qkv(x[:, None, :])
            phi_q = taylor_feature_map(q[:, :, 0].float())
            phi_k = taylor_feature_map(k[:, :, 0].float())
            gamma = torch.exp(self.log_gamma)[None, :, None, None]
            s = gamma * state.s + phi_k[..., :, None] * v[:, :, 0].float()[..., None, :]
            z = state.z + phi_k
            num = torch.einsum("bhf,bhfd->bhd", phi_q, s)
            scale = self._scale(x[:, None, :])
            if scale is not None:
                num = num * scale[:, :, 0, None]
            y = num / ((phi_q * z).sum(dim=-1)[..., None] + self.eps)
            return self._out(y[:, :, None, :], x)[:, 0], LinearAttentionState(s, z)

    Decayed.__name__ = "DecayedLinearAttention"
    return Decayed
