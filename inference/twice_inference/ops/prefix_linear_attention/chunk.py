"""Prefix linear attention (JRT-RNN) in chunked PyTorch: the encoder reads a sequence's first M
real tokens non-causally, the decoder runs causally over every position, and each output reads
both. Any device, dtype and padding; computed in float32.
"""

from __future__ import annotations

import torch

from ..linear_attention.chunk import (
    LinearAttentionState,
    causal_linear_attention_parts,
    masked_features,
)


def encoder_mask(mask: torch.Tensor, encoder_length: int) -> torch.Tensor:
    """True on each sequence's first M real tokens. Counting real tokens (not raw columns) keeps a
    prompt's encoder region the same whatever padding its batch needed."""
    return mask & (mask.long().cumsum(dim=1) <= encoder_length)


def encoder_state(
    k_enc: torch.Tensor, v_enc: torch.Tensor, enc_mask: torch.Tensor | None
) -> LinearAttentionState:
    """Non-causal encoder sums over the masked region (None: every column): s_e [B, H, F, Dv],
    z_e [B, H, F]."""
    _, phi_k, v = masked_features(k_enc, k_enc, v_enc, enc_mask)
    return LinearAttentionState(torch.einsum("bhtf,bhtd->bhfd", phi_k, v), phi_k.sum(dim=2))


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
    enc_mask: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """The PyTorch form of ``prefix_linear_attention`` (any device, dtype, padding)."""
    phi_q, phi_k, v32 = masked_features(q, k, v, key_mask)
    num, den = causal_linear_attention_parts(phi_q, phi_k, v32)
    enc = encoder_state(k_enc, v_enc, enc_mask)
    num = num + torch.einsum("bhtf,bhfd->bhtd", phi_q, enc.s)
    den = den + torch.einsum("bhtf,bhf->bht", phi_q, enc.z)
    return num / (den[..., None] + eps)
