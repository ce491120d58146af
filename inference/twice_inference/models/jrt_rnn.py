"""JRT-RNN adapter: a Based hybrid whose linear-attention layers are prefix linear attention (PLA,
spec section 6.1). Encoder projections k_e, v_e read a sequence's first M real tokens
non-causally; decoder projections k_d, v_d run causally over every position. After prefill the
state is s = sum(phi(k_e)^T v_e) + sum(phi(k_d)^T v_d) (z likewise) and decoding is ordinary
linear attention. ``prefix_linear_attention`` dispatches to the Triton prefix kernel where it
applies (``based.taylor_kernel_applies``), else PyTorch; ``prefix_linear_attention_reference`` is
its loop form. Tested in ``tests/test_models_linear.py`` and ``tests/test_kernel_dispatch.py``.

Inference modes (paper Table 4): "left_pad" (default) pads a prompt shorter than M to M with
masked pads, encodes once, then decodes recurrently; "iterate" re-encodes the whole sequence
non-causally after every generated token (plain and expensive). "Read-2x" is a prompt strategy
(the prompt is repeated) and uses "left_pad" here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field
from torch import nn

from .based import (
    BasedConfig,
    BasedLM,
    LinearAttention,
    LinearAttentionState,
    causal_linear_attention_parts,
    linear_attention_state,
    masked_features,
    taylor_kernel_applies,
)
from .jrt_released_padding import (
    PAD_SEMANTICS,
    RELEASED_PAD_ID,
    released_prefix_linear_attention,
)
from .layers import DecodeState, resolve_mask

INFERENCE_MODES = ("left_pad", "iterate")


class JrtRnnConfig(BasedConfig):
    encoder_length: int = Field(default=1024, gt=0)  # M: real tokens the encoder reads


def encoder_mask(mask: torch.Tensor, encoder_length: int) -> torch.Tensor:
    """True on each sequence's first M real tokens. Counting real tokens (not raw columns) keeps a
    prompt's encoder region the same whatever padding its batch needed."""
    return mask & (mask.long().cumsum(dim=1) <= encoder_length)


def encoder_state(
    k_enc: torch.Tensor, v_enc: torch.Tensor, enc_mask: torch.Tensor
) -> LinearAttentionState:
    """Non-causal encoder sums over the masked region: s_e [B, H, F, Dv], z_e [B, H, F]."""
    _, phi_k, v = masked_features(k_enc, k_enc, v_enc, enc_mask)
    return LinearAttentionState(torch.einsum("bhtf,bhtd->bhfd", phi_k, v), phi_k.sum(dim=2))


def prefix_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    key_mask: torch.Tensor | None,
    enc_mask: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """Parallel PLA. q, k, k_enc [B, H, T, d] (before the feature map); v, v_enc [B, H, T, Dv];
    key_mask [B, T] (real tokens), enc_mask [B, T] (encoder region) -> float32 [B, H, T, Dv].
    The dispatch point: the Triton prefix kernel where it applies, else PyTorch."""
    if taylor_kernel_applies((q, k, v, k_enc, v_enc), key_mask, eps):
        m = encoder_prefix_length(enc_mask)
        if m is not None:
            from ..kernels.prefix_triton import prefix_linear_attention as prefix_kernel

            # The decoder runs over every position (encoder region included), as here; the kernel
            # folds sum_{j<M} phi(k_e)^T v_e (and its normaliser) in before the first one.
            k_e, v_e = k_enc[:, :, :m], v_enc[:, :, :m]
            return prefix_kernel(q, k, v, k_e, v_e).float()
    return prefix_linear_attention_torch(q, k, v, k_enc, v_enc, key_mask, enc_mask, eps)


def encoder_prefix_length(enc_mask: torch.Tensor) -> int | None:
    """M when every row's encoder region is the same leading M >= 1 columns (what the kernel
    encodes: it has no mask), else None. Unpadded batches always give this shape."""
    m = int(enc_mask[0].sum())
    columns = torch.arange(enc_mask.shape[1], device=enc_mask.device)
    if m == 0 or not torch.equal(enc_mask, (columns < m).expand_as(enc_mask)):
        return None
    return m


def prefix_linear_attention_torch(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    key_mask: torch.Tensor | None,
    enc_mask: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """The PyTorch form of ``prefix_linear_attention`` (any device, dtype, padding)."""
    phi_q, phi_k, v32 = masked_features(q, k, v, key_mask)
    num, den = causal_linear_attention_parts(phi_q, phi_k, v32)
    enc = encoder_state(k_enc, v_enc, enc_mask)
    num = num + torch.einsum("bhtf,bhfd->bhtd", phi_q, enc.s)
    den = den + torch.einsum("bhtf,bhf->bht", phi_q, enc.z)
    return num / (den[..., None] + eps)


def prefix_linear_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    key_mask: torch.Tensor | None,
    enc_mask: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """Spec 6.1 written out: first sum the encoder over its region, then walk the decoder one
    timestep at a time, each output reading (decoder prefix + whole encoder)."""
    phi_q, phi_k, v32 = masked_features(q, k, v, key_mask)
    _, phi_ke, ve = masked_features(k_enc, k_enc, v_enc, enc_mask)
    b, h, t, f = phi_q.shape
    s_enc = phi_q.new_zeros(b, h, f, v32.shape[-1])
    z_enc = phi_q.new_zeros(b, h, f)
    for j in range(t):
        s_enc = s_enc + phi_ke[:, :, j, :, None] * ve[:, :, j, None, :]
        z_enc = z_enc + phi_ke[:, :, j]
    s, z = s_enc, z_enc
    outputs = []
    for i in range(t):
        s = s + phi_k[:, :, i, :, None] * v32[:, :, i, None, :]
        z = z + phi_k[:, :, i]
        num = (phi_q[:, :, i, :, None] * s).sum(dim=-2)
        den = (phi_q[:, :, i] * z).sum(dim=-1)
        outputs.append(num / (den[..., None] + eps))
    return torch.stack(outputs, dim=2)


class PrefixLinearAttention(LinearAttention):
    """Decoder projections (proj_q, proj_k, proj_v) are inherited; ``step`` is plain linear
    attention on the state prefill leaves behind."""

    def __init__(self, config: JrtRnnConfig) -> None:
        super().__init__(config)
        self.encoder_length = config.encoder_length
        d = config.d_model
        self.proj_k_enc = nn.Linear(d, self.heads * self.feature_dim, bias=False)
        self.proj_v_enc = nn.Linear(d, self.heads * self.value_dim, bias=False)

    # Set by JrtRnnLM for one released-v1 prefill: the real-token mask of a sequence whose pads
    # the rest of the model treats as tokens (``jrt_released_padding.py``).
    released_key_mask: torch.Tensor | None = None

    def _attend(self, x: torch.Tensor, mask: torch.Tensor):
        q, k, v = self._qkv(x)
        k_enc = self._split(x, self.proj_k_enc, self.feature_dim)
        v_enc = self._split(x, self.proj_v_enc, self.value_dim)
        if self.released_key_mask is not None:
            y, state = released_prefix_linear_attention(
                q, k, v, k_enc, v_enc, self.released_key_mask, self.encoder_length, self.eps
            )
            return y, state
        enc_mask = encoder_mask(mask, self.encoder_length)
        y = prefix_linear_attention(q, k, v, k_enc, v_enc, mask, enc_mask, self.eps)
        return y, (k, v, k_enc, v_enc, enc_mask)

    def forward(self, x, mask, positions):
        y, _ = self._attend(x, mask)
        return self._out(y, x)

    def prefill(self, x, mask, positions):
        if self.released_key_mask is not None:
            y, state = self._attend(x, mask)
            return self._out(y, x), state
        y, (k, v, k_enc, v_enc, enc_mask) = self._attend(x, mask)
        # Decoding continues from encoder sums (over the encoder region only) plus decoder sums.
        enc = linear_attention_state(k_enc, v_enc, enc_mask)
        dec = linear_attention_state(k, v, mask)
        return self._out(y, x), LinearAttentionState(enc.s + dec.s, enc.z + dec.z)


@dataclass
class IterateState:
    """State of the "iterate" mode: the whole sequence so far, re-encoded at every step."""

    input_ids: torch.Tensor
    mask: torch.Tensor
    decode_state: DecodeState

    def nbytes(self) -> int:
        return self.decode_state.nbytes()


class JrtRnnLM(BasedLM):
    family = "jrt_rnn"

    def __init__(self, config: JrtRnnConfig, inference_mode: str = "left_pad") -> None:
        super().__init__(config, linear_attention=PrefixLinearAttention)
        self.inference_mode = "left_pad"
        self.pad_semantics = "masked"
        self.released_pad_id = RELEASED_PAD_ID
        self.set_inference_mode(inference_mode)

    def set_pad_semantics(self, semantics: str, pad_id: int = RELEASED_PAD_ID) -> JrtRnnLM:
        """ "masked" (ours: pads reach no state) or "released-v1" (the paper's code, with its
        leak, padding with ``pad_id``; see ``jrt_released_padding.py``)."""
        if semantics not in PAD_SEMANTICS:
            raise ValueError(f"pad semantics must be one of {PAD_SEMANTICS}, got {semantics!r}")
        if not 0 <= pad_id < self.config.vocab_size:
            raise ValueError(
                f"pad_id {pad_id} outside the vocabulary [0, {self.config.vocab_size})"
            )
        self.pad_semantics = semantics
        self.released_pad_id = pad_id
        return self

    def set_inference_mode(self, mode: str) -> JrtRnnLM:
        if mode not in INFERENCE_MODES:
            raise ValueError(f"inference_mode must be one of {INFERENCE_MODES}, got {mode!r}")
        self.inference_mode = mode
        return self

    def _pad_to_encoder(self, input_ids: torch.Tensor, mask: torch.Tensor):
        """Left-pad to M columns with masked pads (spec 6.1). Pads never enter any state, so this
        only fixes the shape the encoder sees; the pad id itself is irrelevant."""
        short = self.config.encoder_length - input_ids.shape[1]
        if short <= 0:
            return input_ids, mask
        pad_ids = input_ids.new_zeros(input_ids.shape[0], short)
        pad_mask = mask.new_zeros(mask.shape[0], short)
        return torch.cat([pad_ids, input_ids], dim=1), torch.cat([pad_mask, mask], dim=1)

    def prefill(self, input_ids: torch.Tensor, mask: torch.Tensor):
        mask = resolve_mask(input_ids, mask)
        if self.pad_semantics == "released-v1":
            if self.inference_mode == "iterate":
                raise ValueError("released-v1 padding is defined for one prefill, not 'iterate'")
            return self._released_prefill(input_ids, mask)
        input_ids, mask = self._pad_to_encoder(input_ids, mask)
        logits, state = super().prefill(input_ids, mask)
        if self.inference_mode == "iterate":
            return logits, IterateState(input_ids, mask, state)
        return logits, state

    def _released_prefill(self, input_ids: torch.Tensor, mask: torch.Tensor):
        """Pads (the engine's and the encoder's, all id 220) run as tokens; only prefix linear
        attention sees the real-token mask."""
        short = self.config.encoder_length - input_ids.shape[1]
        if short > 0:
            pads = input_ids.new_full((input_ids.shape[0], short), self.released_pad_id)
            input_ids = torch.cat([pads, input_ids], dim=1)
            mask = torch.cat([mask.new_zeros(mask.shape[0], short), mask], dim=1)
        input_ids = torch.where(mask, input_ids, torch.full_like(input_ids, self.released_pad_id))
        layers = [m for m in self.modules() if isinstance(m, PrefixLinearAttention)]
        for layer in layers:
            layer.released_key_mask = mask
        try:
            return super().prefill(input_ids, torch.ones_like(mask))
        finally:
            for layer in layers:
                layer.released_key_mask = None

    def step(self, token_ids: torch.Tensor, state):
        if isinstance(state, IterateState):
            ids = torch.cat([state.input_ids, token_ids[:, None]], dim=1)
            mask = torch.cat([state.mask, torch.ones_like(state.mask[:, :1])], dim=1)
            logits, decode_state = super().prefill(ids, mask)
            return logits, IterateState(ids, mask, decode_state)
        return super().step(token_ids, state)


def build(config: dict) -> JrtRnnLM:
    return JrtRnnLM(JrtRnnConfig.model_validate(config))


def convert_checkpoint(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """hazyresearch/JRT-* share Based's flash-attn GPT layout (plus proj_k_enc, proj_v_enc)."""
    from .based import convert_checkpoint as convert_hazy

    return convert_hazy(state_dict)
