"""Based hybrid adapter: per-layer mixers of three kinds (gated short-conv "BaseConv", Taylor
linear attention, sliding-window softmax attention), each followed by a SwiGLU MLP. The parallel
linear attention lives in one function, ``based_linear_attention``: it dispatches to the Triton
kernel (``kernels.based_triton``) where that computes the same thing, else to the chunked PyTorch
form. ``based_linear_attention_reference`` is the per-timestep loop both are tested against
(``tests/test_models_linear.py``; kernel dispatch under the Triton interpreter in
``tests/test_kernel_dispatch.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from .feature_maps import taylor_feature_dim, taylor_feature_map
from .layers import Block, DecoderLM, Mixer, ShortConv
from .transformer import Attention

LINEAR_ATTENTION_CHUNK = 64


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


# ---------------------------------------------------------------------------------------------
# Linear attention: the parallel function (kernel dispatch point) and its slow reference
# ---------------------------------------------------------------------------------------------


def masked_features(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float32 phi(q), phi(k), v with phi(k) and v zeroed at pads. Zeroing phi(k), not k, matters:
    phi(0) = [1, 0, ...] would still add 1 to every normaliser."""
    phi_q, phi_k, v = taylor_feature_map(q.float()), taylor_feature_map(k.float()), v.float()
    if key_mask is not None:
        keep = key_mask[:, None, :, None].to(torch.float32)
        phi_k, v = phi_k * keep, v * keep
    return phi_q, phi_k, v


def causal_linear_attention_parts(
    phi_q: torch.Tensor, phi_k: torch.Tensor, v: torch.Tensor, chunk: int = LINEAR_ATTENTION_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked causal sums: numerator sum_{j<=i} (phi_q_i . phi_k_j) v_j [B,H,T,Dv] and normaliser
    sum_{j<=i} phi_q_i . phi_k_j [B,H,T]. Inside a chunk the quadratic form is used; across chunks
    an exclusive prefix sum of per-chunk states, so memory is linear in T."""
    b, h, t, f = phi_q.shape
    pad = (-t) % chunk
    if pad:
        phi_q, phi_k, v = (F.pad(x, (0, 0, 0, pad)) for x in (phi_q, phi_k, v))
    n = (t + pad) // chunk
    qc = phi_q.view(b, h, n, chunk, f)
    kc = phi_k.view(b, h, n, chunk, f)
    vc = v.view(b, h, n, chunk, v.shape[-1])
    scores = torch.tril(qc @ kc.transpose(-1, -2))  # [B, H, N, C, C]
    chunk_kv = kc.transpose(-1, -2) @ vc  # [B, H, N, F, Dv]
    chunk_z = kc.sum(dim=-2)  # [B, H, N, F]
    prior_kv = chunk_kv.cumsum(dim=2) - chunk_kv
    prior_z = chunk_z.cumsum(dim=2) - chunk_z
    num = scores @ vc + qc @ prior_kv
    den = scores.sum(dim=-1) + (qc * prior_z[:, :, :, None, :]).sum(dim=-1)
    num = num.reshape(b, h, n * chunk, -1)[:, :, :t]
    den = den.reshape(b, h, n * chunk)[:, :, :t]
    return num, den


# Which path the Taylor linear attention prefill takes (Based and JRT-RNN share it):
# "auto": the Triton kernels on CUDA tensors where they apply, PyTorch elsewhere; "off": always
# PyTorch (A/B timing); "interpreter": also CPU tensors, through Triton's interpreter (tests; needs
# TRITON_INTERPRET=1 before the kernels are imported). Env var, overridable in-process.
KERNEL_MODE_ENV = "TWICE_TAYLOR_KERNEL"
KERNEL_MODES = ("auto", "off", "interpreter")
_kernel_mode_override: str | None = None
KERNEL_FEATURE_DIM = 16  # the kernels are specialised for d = 16
# The kernels pick their own tuned launch config; its value block (32) must divide Dv.
KERNEL_VALUE_BLOCK = 32
# The kernels divide by the bare normaliser. It is >= 1/2 (1 + s + s^2/2 >= 1/2 for the first
# key alone), so an eps this small moves y by < 2e-6 relative, far below bf16 output rounding.
KERNEL_MAX_EPS = 1e-6


def taylor_kernel_mode() -> str:
    mode = _kernel_mode_override or os.environ.get(KERNEL_MODE_ENV, "auto")
    if mode not in KERNEL_MODES:
        raise ValueError(f"{KERNEL_MODE_ENV} must be one of {KERNEL_MODES}, got {mode!r}")
    return mode


@contextmanager
def use_taylor_kernel_mode(mode: str) -> Iterator[None]:
    """Force a kernel mode inside a block (bench_models' A/B), whatever the env var says."""
    global _kernel_mode_override
    if mode not in KERNEL_MODES:
        raise ValueError(f"kernel mode must be one of {KERNEL_MODES}, got {mode!r}")
    previous, _kernel_mode_override = _kernel_mode_override, mode
    try:
        yield
    finally:
        _kernel_mode_override = previous


def taylor_kernel_applies(
    tensors: tuple[torch.Tensor, ...], key_mask: torch.Tensor | None, eps: float
) -> bool:
    """True when the Triton kernels compute what the PyTorch path does (to bf16 rounding) for
    (q, k, v[, k_enc, v_enc]): the right device for the mode, all bf16 (the kernels' only dtype;
    casting fp16/fp32 down would change the numbers, so those stay on PyTorch), feature dim 16,
    value dim a multiple of the value block, a tiny eps, and no padding: the kernels have no
    mask, and a pad must stay out of every state including the normaliser."""
    mode = taylor_kernel_mode()
    if mode == "off":
        return False
    q, k, v = tensors[:3]
    device = q.device.type
    if device != "cuda" and not (mode == "interpreter" and device == "cpu"):
        return False
    if any(t.dtype != torch.bfloat16 for t in tensors):
        return False
    # forward-only kernels: training (anything that needs a gradient) stays on PyTorch
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    if q.shape[-1] != KERNEL_FEATURE_DIM or k.shape[-1] != KERNEL_FEATURE_DIM:
        return False
    if v.shape[-1] % KERNEL_VALUE_BLOCK or eps > KERNEL_MAX_EPS or q.shape[2] == 0:
        return False
    if key_mask is not None and not bool(key_mask.all()):
        return False
    if device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(f"{KERNEL_MODE_ENV}=interpreter on CPU needs TRITON_INTERPRET=1")
    return True


def based_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """Parallel causal Taylor linear attention. q, k [B, H, T, d] (before the feature map), v
    [B, H, T, Dv], key_mask [B, T] bool or None -> float32 [B, H, T, Dv].
    The dispatch point: the Triton kernel where ``taylor_kernel_applies``, else PyTorch."""
    if taylor_kernel_applies((q, k, v), key_mask, eps):
        from ..kernels.based_triton import based_causal_attention  # imports triton: lazily

        return based_causal_attention(q, k, v).float()
    return based_linear_attention_torch(q, k, v, key_mask, eps)


def based_linear_attention_torch(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """The chunked PyTorch form of ``based_linear_attention`` (any device, dtype, padding)."""
    phi_q, phi_k, v = masked_features(q, k, v, key_mask)
    num, den = causal_linear_attention_parts(phi_q, phi_k, v)
    return num / (den[..., None] + eps)


def based_linear_attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """The recurrence written out one timestep at a time: s += phi(k)^T v, z += phi(k),
    y = phi(q) s / (phi(q) . z + eps)."""
    phi_q, phi_k, v = masked_features(q, k, v, key_mask)
    b, h, t, f = phi_q.shape
    s = phi_q.new_zeros(b, h, f, v.shape[-1])
    z = phi_q.new_zeros(b, h, f)
    outputs = []
    for i in range(t):
        s = s + phi_k[:, :, i, :, None] * v[:, :, i, None, :]
        z = z + phi_k[:, :, i]
        num = (phi_q[:, :, i, :, None] * s).sum(dim=-2)
        den = (phi_q[:, :, i] * z).sum(dim=-1)
        outputs.append(num / (den[..., None] + eps))
    return torch.stack(outputs, dim=2)


@dataclass
class LinearAttentionState:
    s: torch.Tensor  # [B, H, F, Dv] float32: sum of phi(k)^T v
    z: torch.Tensor  # [B, H, F] float32: sum of phi(k)


# Prompt tokens per slice when summing the decode state (phi(k) is float32 [B, H, chunk, F]).
STATE_CHUNK = 512


def linear_attention_state(
    k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, chunk: int = STATE_CHUNK
) -> LinearAttentionState:
    """The state a prompt leaves for decoding: s = sum_t phi(k_t)^T v_t, z = sum_t phi(k_t) over
    the positions key_mask keeps (None: all), float32. k [B, H, T, d], v [B, H, T, Dv].
    Summed slice by slice so phi(k) only ever exists for ``chunk`` tokens: for a whole prompt it
    is float32 [B, H, T, 1 + d + d^2], 2.3 GB per layer at batch 16, 16 heads, 8192 tokens."""
    b, h, t, d = k.shape
    features = taylor_feature_dim(d)
    s = torch.zeros(b, h, features, v.shape[-1], dtype=torch.float32, device=k.device)
    z = torch.zeros(b, h, features, dtype=torch.float32, device=k.device)
    start, stop = 0, t
    if key_mask is not None:
        # Columns no row keeps add nothing; skipping them skips the left pads and, for JRT's
        # encoder, everything after the encoder region.
        kept = key_mask.any(dim=0).nonzero()
        if kept.numel() == 0:
            return LinearAttentionState(s, z)
        start, stop = int(kept[0]), int(kept[-1]) + 1
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        phi_k = taylor_feature_map(k[:, :, lo:hi].float())
        if key_mask is not None:
            # Zero phi(k), not k: phi(0) = [1, 0, ...] would still count in z. A zero phi(k) row
            # also drops its v from s, so v needs no mask of its own.
            phi_k = phi_k * key_mask[:, None, lo:hi, None].to(phi_k.dtype)
        s += phi_k.transpose(-1, -2) @ v[:, :, lo:hi].float()
        z += phi_k.sum(dim=2)
    return LinearAttentionState(s, z)


def linear_attention_state_reference(
    k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
) -> LinearAttentionState:
    """``linear_attention_state`` in one shot over the whole prompt (the memory-hungry form)."""
    _, phi_k, v32 = masked_features(k, k, v, key_mask)
    return LinearAttentionState(torch.einsum("bhtf,bhtd->bhfd", phi_k, v32), phi_k.sum(dim=2))


def linear_attention_step(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: LinearAttentionState, eps: float
) -> tuple[torch.Tensor, LinearAttentionState]:
    """One token: q, k [B, H, d], v [B, H, Dv] -> (y [B, H, Dv] float32, advanced state)."""
    phi_q, phi_k = taylor_feature_map(q.float()), taylor_feature_map(k.float())
    s = state.s + phi_k[..., :, None] * v.float()[..., None, :]
    z = state.z + phi_k
    num = torch.einsum("bhf,bhfd->bhd", phi_q, s)
    den = (phi_q * z).sum(dim=-1)
    return num / (den[..., None] + eps), LinearAttentionState(s, z)


class LinearAttention(Mixer):
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


class BaseConv(Mixer):
    def __init__(self, config: BasedConfig) -> None:
        super().__init__()
        d = config.d_model
        self.inner = config.conv_expand * d // 2
        self.in_proj = nn.Linear(d, config.conv_expand * d, bias=True)
        self.conv = ShortConv(self.inner, config.conv_kernel, bias=config.conv_bias)
        self.out_proj = nn.Linear(self.inner, d, bias=True)

    def forward(self, x, mask, positions):
        u1, u2 = self.in_proj(x).split(self.inner, dim=-1)
        return self.out_proj(F.silu(self.conv(u1, mask)) * u2)

    def prefill(self, x, mask, positions):
        u1, u2 = self.in_proj(x).split(self.inner, dim=-1)
        y = self.out_proj(F.silu(self.conv(u1, mask)) * u2)
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


# ---------------------------------------------------------------------------------------------
# Checkpoint names: flash-attn GPT layout used by hazyresearch/{attn,based,JRT}-* checkpoints
# ---------------------------------------------------------------------------------------------

_RENAMES = (
    ("embeddings.word_embeddings.weight", "embeddings.weight"),
    ("ln_f.weight", "final_norm.weight"),
    (".mixer.conv1.conv.", ".mixer.conv."),  # older BaseConv naming
    (".mixer.conv.conv.", ".mixer.conv."),
)
_DROPPED_SUFFIXES = ("inv_freq", "_cos_cached", "_sin_cached", "tril_indices")


def convert_checkpoint(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map hazy (flash-attn GPTLMHeadModel) keys onto this package's module names. Names were
    inferred from the public training code; a strict load afterwards reports anything unmatched."""
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if key.endswith(_DROPPED_SUFFIXES):
            continue
        name = key
        for prefix in ("model.", "transformer.", "backbone."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        for old, new in _RENAMES:
            name = name.replace(old, new)
        if name == "decay.decay":
            continue  # the fixed-decay buffer; recomputed from decay_const (decay.py)
        converted[name] = tensor
    return converted
