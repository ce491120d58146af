"""Building blocks shared by the attention and linear-attention adapters: RMSNorm, SwiGLU MLP,
rotary embedding, a causal depthwise short convolution with a recurrent step form, softmax
attention with key masks, and the left-padding helpers every family uses.

Tested in ``tests/test_layers.py`` (attention fast paths vs the dense-mask reference) and through
``tests/test_models_linear.py`` (each model's parallel vs recurrent agreement).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.padding import known_padding, mask_is_full
from ..ops.pointwise import rotate_half, swiglu
from ..ops.short_conv import causal_depthwise_conv
from ..ops.window_attention import flash_window_applies, flash_window_attention
from .rotary import inverse_frequencies, rotated_width

# ---------------------------------------------------------------------------------------------
# Padding helpers
# ---------------------------------------------------------------------------------------------


def resolve_mask(input_ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Return a bool [B, T] mask (True = real token), checking shape and left padding."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
    if mask is None:
        return torch.ones_like(input_ids, dtype=torch.bool)
    if mask.shape != input_ids.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} must equal input_ids shape {tuple(input_ids.shape)}"
        )
    mask = mask.to(torch.bool)
    # Left padding means once a row has a real token, every later position is real too.
    if (mask[:, :-1] & ~mask[:, 1:]).any():
        raise ValueError("mask must be left-padded: found a pad position after a real token")
    return mask


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Per-sequence position of each token, counting real tokens only ([B, T], pads get 0), so a
    prompt's positions do not depend on how much padding its batch needed."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)


def rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max |e|: the agreement measure the tests hold to 1e-4."""
    denom = expected.abs().max().clamp(min=1e-30)
    return float((actual - expected).abs().max() / denom)


# ---------------------------------------------------------------------------------------------
# Norm and MLP
# ---------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32: bf16 mean-of-squares loses too much precision. F.rms_norm does
        # that itself for half inputs (float32 sums and products, one rounding at the end), in
        # one fused kernel on a GPU, so with the weight in x's dtype it takes x as it is: the
        # float32 copy of x and the cast back cost a 360M prefill ~20 ms at 8 x 8192 for the
        # same bits (tests/test_layers.py).
        if self.weight.dtype == x.dtype:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        x32 = x.float()
        normed = F.rms_norm(x32, (x32.shape[-1],), self.weight.float(), self.eps)
        return normed.to(x.dtype)


class SwiGLU(nn.Module):
    """fc1 produces [value, gate]; out = fc2(value * silu(gate)) (the flash-attn GatedMlp layout
    the hazy checkpoints use)."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * hidden, bias=False)
        self.fc2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(swiglu(value, gate))


def swiglu_hidden_default(d_model: int, multiple_of: int = 128) -> int:
    """flash-attn's GatedMlp default width: 8/3 * d rounded up to a multiple of 128."""
    return int(math.ceil(8 * d_model / 3 / multiple_of) * multiple_of)


# ---------------------------------------------------------------------------------------------
# Rotary embedding (non-interleaved, rotating the first ``rotary_dim`` channels)
# ---------------------------------------------------------------------------------------------


class Rotary(nn.Module):
    """``rotary_dim`` is the configured width, odd allowed (see ``rotary.py``: flash-attn rotates
    ``2 * ceil(rotary_dim / 2)`` channels)."""

    def __init__(self, rotary_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.rotary_dim = rotary_dim
        self.width = rotated_width(rotary_dim)
        self.base = base
        # Built once per device, not per call: a decode step calls this at every layer. Kept out
        # of the buffers so model.to(bfloat16) cannot round it.
        self._inv_freq: dict[torch.device, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x [..., B, H, T, Dh] (q and k may come stacked on a leading dim, sharing one cos/sin),
        positions [B, T] -> x with its first ``width`` channels rotated."""
        if self.rotary_dim == 0:
            return x
        if self.width > x.shape[-1]:
            raise ValueError(f"rotary width {self.width} exceeds head dim {x.shape[-1]}")
        inv_freq = self._inv_freq.get(x.device)
        if inv_freq is None:
            inv_freq = inverse_frequencies(self.rotary_dim, self.base, x.device)
            self._inv_freq[x.device] = inv_freq
        angles = positions.to(torch.float32)[:, None, :, None] * inv_freq  # [B, 1, T, half]
        return rotate_half(x, angles.cos(), angles.sin(), self.width)


# ---------------------------------------------------------------------------------------------
# Causal depthwise short convolution
# ---------------------------------------------------------------------------------------------


class ShortConv(nn.Module):
    """Causal depthwise conv over time. Parallel form pads K-1 zeros on the left; recurrent form
    keeps the last K-1 inputs. Pad positions are zeroed before the conv, so a left-padded prompt
    sees exactly the zeros it would see alone."""

    def __init__(self, channels: int, kernel_size: int, bias: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        nn.init.normal_(self.weight, std=kernel_size**-0.5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, C], mask [B, T] bool -> [B, T, C]."""
        return causal_depthwise_conv(x, mask, self.weight, self.bias)

    def tail_state(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The last K-1 (masked) inputs as [B, C, K-1], zero-filled for short prompts."""
        need = self.kernel_size - 1
        # Mask only the kept positions: masking the whole prompt first was a pass over all of it.
        start = max(0, x.shape[1] - need)
        x = (x[:, start:] * mask[:, start:, None].to(x.dtype)).transpose(1, 2)
        if x.shape[-1] < need:
            x = F.pad(x, (need - x.shape[-1], 0))
        return x.contiguous()

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C], state [B, C, K-1] -> (y [B, C], new state)."""
        window = torch.cat([state, x[..., None]], dim=-1)  # [B, C, K]
        y = (window * self.weight[:, 0, :]).sum(dim=-1)
        if self.bias is not None:
            y = y + self.bias
        return y, window[..., 1:]


# ---------------------------------------------------------------------------------------------
# Softmax attention with key masks
# ---------------------------------------------------------------------------------------------


def masked_causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    window: int | None = None,
) -> torch.Tensor:
    """Causal SDPA over [B, H, T, Dh] with pad keys excluded. ``window`` w limits query i to keys
    i-w..i (w + 1 keys, itself included). Without padding this takes a fast path that builds no
    [T, T] mask (``causal_attention``; for a window, fla's flash kernel on a GPU where
    ``ops.window_attention`` allows it, else ``sliding_window_attention``); with padding it is
    ``masked_causal_attention_dense``, the reference the fast paths are tested against."""
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1 or None, got {window}")
    if q.shape[-2] == 0 or not mask_is_full(key_mask):
        return masked_causal_attention_dense(q, k, v, key_mask, window)
    if window is None:
        return causal_attention(q, k, v)
    if flash_window_applies(q, k, v):
        return flash_window_attention(q, k, v, window)
    return sliding_window_attention(q, k, v, window)


def masked_causal_attention_dense(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor,
    window: int | None = None,
) -> torch.Tensor:
    """The general form: an explicit [B, 1, T, T] mask (O(T^2) memory, and it rules out SDPA's
    flash backend). A pad query may see itself so no softmax row is empty (an empty row is NaN,
    and NaN would leak through later layers even where it is masked)."""
    t = q.shape[-2]
    idx = torch.arange(t, device=q.device)
    allowed = idx[None, :] <= idx[:, None]
    if window is not None:
        allowed = allowed & (idx[:, None] - idx[None, :] <= window)
    allowed = allowed[None, None] & key_mask[:, None, None, :]
    allowed = allowed | torch.eye(t, dtype=torch.bool, device=q.device)[None, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plain causal attention with no padding: no mask tensor, so SDPA may pick flash."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int
) -> torch.Tensor:
    """Query i over keys i-w..i with no padding, in O(T * w) time and memory. Queries are cut
    into blocks of w; block n (n >= 1) needs keys from [(n-1)w, (n+1)w) only, under one shared
    [w, 2w] band mask. Block 0 has no earlier keys and the window cannot bind inside it (i - j
    <= w - 1 there), so it is plain causal attention, as is any T <= w + 1."""
    b, h, t, d = q.shape
    w = window
    if t <= w + 1:
        return causal_attention(q, k, v)
    head = causal_attention(q[:, :, :w], k[:, :, :w], v[:, :, :w])
    pad = (-t) % w
    # Right padding only adds keys after every real query, which causality already excludes.
    qp, kp, vp = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    n = (t + pad) // w - 1  # blocks after block 0

    def blocks(x: torch.Tensor, start: int) -> torch.Tensor:
        return x[:, :, start : start + n * w].reshape(b, h, n, w, x.shape[-1])

    q_blocks = blocks(qp, w)
    k_blocks = torch.cat([blocks(kp, 0), blocks(kp, w)], dim=3)  # [B, H, n, 2w, Dh]
    v_blocks = torch.cat([blocks(vp, 0), blocks(vp, w)], dim=3)
    # Query r of block n is position nw + r; key c is (n-1)w + c; so i - j = w + r - c, and
    # 0 <= i - j <= w becomes r <= c <= r + w.
    r = torch.arange(w, device=q.device)[:, None]
    c = torch.arange(2 * w, device=q.device)[None, :]
    band = (c >= r) & (c <= r + w)
    tail = F.scaled_dot_product_attention(
        q_blocks.flatten(1, 2), k_blocks.flatten(1, 2), v_blocks.flatten(1, 2), attn_mask=band
    )
    # reshape, not view: on CUDA the SDPA kernels may return a non-contiguous layout
    tail = tail.reshape(b, h, n * w, v.shape[-1])
    return torch.cat([head, tail], dim=2)[:, :, :t]


def attend_one(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor
) -> torch.Tensor:
    """One query per sequence: q [B, H, 1, Dh] over cached k, v [B, H, S, Dh], key_mask [B, S]."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])


# ---------------------------------------------------------------------------------------------
# The decoder skeleton every family here shares: embed -> [norm, mixer, norm, MLP] x N -> head
# ---------------------------------------------------------------------------------------------


def tensors_nbytes(obj: object) -> int:
    """Bytes held by every tensor inside nested dataclasses / lists / tuples / dicts."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensors_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensors_nbytes(v) for v in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(tensors_nbytes(getattr(obj, name)) for name in obj.__dataclass_fields__)
    return 0


StateT = TypeVar("StateT")
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def modules_of(modules: nn.ModuleList, kind: type[ModuleT]) -> Iterator[ModuleT]:
    """The items of ``modules``, each checked to be a ``kind``: nn.ModuleList does not say what it
    holds, and a layer of the wrong kind should fail here, naming both, not at an attribute."""
    for module in modules:
        if not isinstance(module, kind):
            raise TypeError(f"expected {kind.__name__} layers, found {type(module).__name__}")
        yield module


class Mixer(nn.Module, Generic[StateT]):
    """Sequence mixer interface. ``x`` is [B, T, D]; ``positions`` are per-sequence positions;
    ``StateT`` is the decoding state a mixer's ``prefill`` returns and its ``step`` advances."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prefill(
        self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, StateT]:
        raise NotImplementedError

    def step(
        self, x: torch.Tensor, positions: torch.Tensor, state: StateT
    ) -> tuple[torch.Tensor, StateT]:
        """x [B, D], positions [B] -> (y [B, D], state)."""
        raise NotImplementedError

    def reserve(self, state: StateT, extra: int) -> StateT:
        """``state`` ready for ``extra`` more steps without reallocating (a KV cache's room);
        fixed-size states already are."""
        return state

    def state_bytes(self, prompt_len: int, element_size: int) -> int:
        """Decoding-state bytes for one sequence after ``prompt_len`` tokens."""
        raise NotImplementedError


class Block(nn.Module):
    """Pre-norm residual block: x + mixer(norm1(x)), then + mlp(norm2(.))."""

    def __init__(self, d_model: int, mixer: Mixer[Any], mlp_hidden: int, norm_eps: float) -> None:
        super().__init__()
        self.norm1 = RMSNorm(d_model, norm_eps)
        self.mixer = mixer
        self.norm2 = RMSNorm(d_model, norm_eps)
        self.mlp = SwiGLU(d_model, mlp_hidden)

    def _mlp(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(self.norm2(h))


class DecodeState:
    """Per-layer mixer states plus the next per-sequence position."""

    def __init__(self, layers: list[object], positions: torch.Tensor) -> None:
        self.layers = layers
        self.positions = positions

    def nbytes(self) -> int:
        return tensors_nbytes(self.layers)


class DecoderLM(nn.Module):
    """Shared body of the Transformer++, Based and JRT-RNN adapters. Subclasses build
    ``self.layers`` (a list of ``Block``) and set ``family``."""

    family: str = ""

    def __init__(
        self, vocab_size: int, d_model: int, norm_eps: float, tie_embeddings: bool
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.embeddings = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList()
        self.final_norm = RMSNorm(d_model, norm_eps)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:
            self.lm_head.weight = self.embeddings.weight

    # -- weights --------------------------------------------------------------------------------

    def init_random(self, seed: int = 0, std: float | None = None) -> DecoderLM:
        """Seeded random weights: norm gains 1, biases 0, short-conv filters normal(0, 1/sqrt(K)).

        Matrices, by default (``std=None``, the tiny zoo's scheme): normal(0, 1/sqrt(fan_in)), with
        the two residual-branch outputs (mixer ``out_proj``, MLP ``fc2``) further divided by
        sqrt(2 * n_layers) as GPT-2 does, so the residual stream does not grow with depth. The
        embedding gets 1/sqrt(d_model) too: its rows have unit norm and, as the tied head, it is
        then itself a fan-in init, so the starting logits have unit variance.
        With ``std`` given, every matrix is normal(0, std) instead (GPT-2's 0.02, which the
        paper-size benchmark uses). At d_model 128 that is 4x below fan-in scale, so attention
        scores start near zero; the zoo's attention-style models trained from it learned no
        recall."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        residual_scale = (2 * len(self.layers)) ** -0.5
        with torch.no_grad():
            for name, p in self.named_parameters():
                if (
                    name.endswith("norm1.weight")
                    or name.endswith("norm2.weight")
                    or name == "final_norm.weight"
                ):
                    p.fill_(1.0)
                elif p.dim() == 1:
                    p.zero_()
                else:
                    fan_in = p[0].numel()  # Linear [out, in]: in; depthwise conv [C, 1, K]: K
                    if name.endswith("conv.weight"):
                        scale = fan_in**-0.5
                    elif std is not None:
                        scale = std
                    elif name.endswith("out_proj.weight") or name.endswith("fc2.weight"):
                        scale = fan_in**-0.5 * residual_scale
                    else:
                        scale = fan_in**-0.5
                    p.copy_(torch.randn(p.shape, generator=gen) * scale)
        return self

    def _dtype(self) -> torch.dtype:
        return self.embeddings.weight.dtype

    def blocks(self) -> Iterator[Block]:
        return modules_of(self.layers, Block)

    # -- parallel form --------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = resolve_mask(input_ids, mask)
        positions = positions_from_mask(mask)
        h = self.embeddings(input_ids)
        with known_padding(mask):  # one sync for every layer's unpadded fast path
            for block in self.blocks():
                h = h + block.mixer(block.norm1(h), mask, positions)
                h = block._mlp(h)
        return self.lm_head(self.final_norm(h)).float()

    # -- recurrent form -------------------------------------------------------------------------

    def prefill(
        self, input_ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, DecodeState]:
        mask = resolve_mask(input_ids, mask)
        positions = positions_from_mask(mask)
        h = self.embeddings(input_ids)
        states: list[object] = []
        with known_padding(mask):  # one sync for every layer's unpadded fast path
            for block in self.blocks():
                y, layer_state = block.mixer.prefill(block.norm1(h), mask, positions)
                h = block._mlp(h + y)
                states.append(layer_state)
        logits = self.lm_head(self.final_norm(h[:, -1])).float()
        return logits, DecodeState(states, mask.long().sum(dim=1))

    def step(self, token_ids: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        if token_ids.dim() != 1:
            raise ValueError(f"token_ids must be [B], got shape {tuple(token_ids.shape)}")
        h = self.embeddings(token_ids)
        new_states: list[object] = []
        for block, layer_state in zip(self.blocks(), state.layers, strict=True):
            y, layer_state = block.mixer.step(block.norm1(h), state.positions, layer_state)
            h = block._mlp(h + y)
            new_states.append(layer_state)
        logits = self.lm_head(self.final_norm(h)).float()
        return logits, DecodeState(new_states, state.positions + 1)

    def reserve_decoding(self, state: object, extra: int) -> object:
        """The state after ``prefill``, ready for ``extra`` decode steps without reallocating
        (see ``engine/generate.py``). Another kind of state (JRT-RNN's "iterate" mode) is
        returned as it is."""
        if not isinstance(state, DecodeState):
            return state
        layers = [
            block.mixer.reserve(layer_state, extra)
            for block, layer_state in zip(self.blocks(), state.layers, strict=True)
        ]
        return DecodeState(layers, state.positions)

    def state_size_bytes(self, batch_size: int = 1, prompt_len: int = 0) -> int:
        size = self._dtype().itemsize
        per_seq = sum(block.mixer.state_bytes(prompt_len, size) for block in self.blocks())
        return batch_size * per_seq
