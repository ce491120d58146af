"""JRT-RNN's padding as the paper's released code computes it ("released-v1"), kept beside ours so
Tables 2 and 4 (Left-pad and Read-2x rows) can be matched number for number.

Ours (the default, "masked"): pad positions never reach any state; the encoder reads each
sequence's first M real tokens.

Released: a prompt shorter than M = ``encoder_length`` is left-padded to M columns with the space
token (GPT-2 id 220), and the pads are otherwise ordinary tokens: they take positions, pass through
the short convolutions, sliding-window attention and MLPs. Only prefix linear attention looks at
the mask, and only when the padded sequence is at most M long: it zeroes the raw keys k and k_e at
pads *before* the Taylor feature map, so phi(0) = [1, 0, ...] still adds 1 to every normaliser
and the pads' unmasked v and v_e still enter the numerator and the carried state. The encoder
region is the first min(M, T) columns, pads included. Longer (unpadded-to-M) batches are not
masked at all.

``released_prefix_linear_attention`` is that layer computation (parallel output and the state
decoding continues from); ``tests/test_jrt_released_padding.py`` checks it against an
independent loop port on a padded toy.
"""

from __future__ import annotations

import torch

from ..ops.linear_attention.chunk import LinearAttentionState, linear_attention_state
from ..ops.prefix_linear_attention.chunk import prefix_linear_attention_torch

PAD_SEMANTICS = ("masked", "released-v1")
RELEASED_PAD_ID = 220  # GPT-2's " ", what the paper's harness pads hazy models with


def released_masks(
    key_mask: torch.Tensor, encoder_length: int
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(raw-key mask or None, encoder column mask) for a [B, T] real-token mask."""
    b, t = key_mask.shape
    columns = torch.arange(t, device=key_mask.device)
    enc_columns = (columns < min(encoder_length, t)).expand(b, t)
    zero_keys = key_mask if t <= encoder_length else None
    return zero_keys, enc_columns


def released_prefix_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor,
    v_enc: torch.Tensor,
    key_mask: torch.Tensor,
    encoder_length: int,
    eps: float,
):
    """-> (y float32 [B, H, T, Dv], LinearAttentionState after the prompt)."""
    zero_keys, enc_columns = released_masks(key_mask, encoder_length)
    if zero_keys is not None:
        keep = zero_keys[:, None, :, None].to(k.dtype)
        k, k_enc = k * keep, k_enc * keep
    y = prefix_linear_attention_torch(q, k, v, k_enc, v_enc, None, enc_columns, eps)
    enc = linear_attention_state(k_enc, v_enc, enc_columns)
    dec = linear_attention_state(k, v, None)
    return y, LinearAttentionState(enc.s + dec.s, enc.z + dec.z)
