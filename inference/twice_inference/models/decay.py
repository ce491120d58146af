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
which the recurrence here reproduces exactly.) The parallel form is the op
``ops.linear_attention.decayed`` (a Triton kernel on CUDA, chunked PyTorch elsewhere). Tested by
``tests/test_decay.py`` against a float64 loop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..ops.feature_map import taylor_feature_map
from ..ops.linear_attention.chunk import LinearAttentionState
from ..ops.linear_attention.decayed import decayed_taylor_attention


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
            return self.decay_proj(x).transpose(1, 2)  # [B, H, T], x's dtype, a strided view

        def _parallel(self, x, mask):
            q, k, v = self._qkv(x)
            return decayed_taylor_attention(q, k, v, self.log_gamma, self._scale(x), mask, self.eps)

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
                num = num * scale[:, :, 0, None].float()
            y = num / ((phi_q * z).sum(dim=-1)[..., None] + self.eps)
            return self._out(y[:, :, None, :], x)[:, 0], LinearAttentionState(s, z)

    Decayed.__name__ = "DecayedLinearAttention"
    return Decayed
