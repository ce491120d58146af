"""JRT-RNN adapter: a Based hybrid whose linear-attention layers are prefix linear attention (PLA,
the op ``ops.prefix_linear_attention``; docs/protocol.md). Encoder projections k_e, v_e read a
sequence's first M real tokens non-causally; decoder projections k_d, v_d run causally over
every position. After prefill the state is s = sum(phi(k_e)^T v_e) + sum(phi(k_d)^T v_d) (z
likewise) and decoding is ordinary linear attention. Tested in ``tests/test_models_linear.py``.

Inference modes (the paper's JRT-RNN evaluation): "left_pad" (default) pads a prompt shorter
than M to M with masked pads, encodes once, then decodes recurrently; "iterate" re-encodes the
whole sequence non-causally after every generated token (plain and expensive). "Read-2x" is a
prompt strategy (the prompt is repeated) and uses "left_pad" here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field
from torch import nn

from ..ops.linear_attention import LinearAttentionState, linear_attention_state
from ..ops.padding import mask_is_full
from ..ops.prefix_linear_attention import encoder_mask, prefix_linear_attention
from .based import BasedConfig, BasedLM, LinearAttention
from .jrt_released_padding import (
    PAD_SEMANTICS,
    RELEASED_PAD_ID,
    released_prefix_linear_attention,
)
from .layers import DecodeState, resolve_mask

INFERENCE_MODES = ("left_pad", "iterate")


class JrtRnnConfig(BasedConfig):
    encoder_length: int = Field(default=1024, gt=0)  # M: real tokens the encoder reads


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
        if mask_is_full(mask):
            return self._prefill_unpadded(x)
        y, (k, v, k_enc, v_enc, enc_mask) = self._attend(x, mask)
        # Decoding continues from encoder sums (over the encoder region only) plus decoder sums.
        enc = linear_attention_state(k_enc, v_enc, enc_mask)
        dec = linear_attention_state(k, v, mask)
        return self._out(y, x), LinearAttentionState(enc.s + dec.s, enc.z + dec.z)

    def _prefill_unpadded(self, x: torch.Tensor):
        """An unpadded prompt (at least M tokens once ``JrtRnnLM`` has padded it): the encoder
        region is the first M columns of every row, so the encoder projections run over those
        alone, and q, k, v and the encoder's k, v are made contiguous once, here, for both the
        prefix kernel and the two state kernels (each made its own copy of the projections'
        strided views before). The same function as the general path, to the rounding of the
        smaller encoder matmuls."""
        q, k, v = (t.contiguous() for t in self._qkv(x))
        head = x[:, : min(self.encoder_length, x.shape[1])]
        k_enc = self._split(head, self.proj_k_enc, self.feature_dim).contiguous()
        v_enc = self._split(head, self.proj_v_enc, self.value_dim).contiguous()
        y = prefix_linear_attention(q, k, v, k_enc, v_enc, None, None, self.eps)
        enc = linear_attention_state(k_enc, v_enc, None)
        dec = linear_attention_state(k, v, None)
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
    config: JrtRnnConfig

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
        """Left-pad to M columns with masked pads (docs/protocol.md, Prefix linear attention). Pads
        never enter any state, so this only fixes the shape the encoder sees; the pad id itself is
        irrelevant."""
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
