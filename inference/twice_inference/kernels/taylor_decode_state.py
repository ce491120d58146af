"""The decode state a prompt leaves, s = sum phi(k)^T v and z = sum phi(k) over the 273 Taylor
features, from the segment-state kernel (``taylor_state.taylor_segment_state``): every segment
of the prompt summed in parallel, then the segments added up and the kernel's layout turned into
``ops.feature_map``'s.

Why: ``ops.linear_attention.linear_attention_state`` builds float32 phi(k) slice by slice and
multiplies on the CUDA cores; in a JRT-RNN 360M prefill at 8 x 8192 that was most of the
linear-attention layers' 52 ms (their decoder state over every token and the encoder's over
M tokens, five layers; docs/measurements). The kernel reads bf16 k and v once.

Numerics: the kernel rounds each second-order product k_i k_j to bf16 before its tensor-core dot
(fp32 accumulation) and sums k k^T in tf32, so the state agrees with the float32 form to bf16
rounding, not bit for bit. Tested under the Triton interpreter in
``tests/test_kernel_dispatch.py``; on a GPU by ``bench.window_check``.
"""

from __future__ import annotations

import math

import torch

from .taylor_state import FEATURE_DIM, segment_length, segment_states

# Tokens per segment: at 8 x 16 heads x 8192 tokens, 16 segments of 8 chunks make 4096 programs,
# enough to fill an H200 several times over; the partial states they write (273 x Dv fp32 each)
# stay a small fraction of k and v.
SEGMENT_TOKENS = 512
BLOCK_C = 64
BLOCK_DV = 32
NUM_WARPS = 4


def taylor_decode_state(k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """k [B, H, L, 16], v [B, H, L, Dv] bf16 (L >= 1, Dv a multiple of 32, or 16) -> (s
    [B, H, 273, Dv], z [B, H, 273]) float32 in ``taylor_feature_map``'s order: [1, x, x outer x]."""
    b, h, length, d = k.shape
    dv = v.shape[-1]
    if d != FEATURE_DIM or k.dtype != torch.bfloat16 or v.dtype != torch.bfloat16:
        raise ValueError(f"k must be bf16 [B, H, L, {FEATURE_DIM}], got {k.dtype} {tuple(k.shape)}")
    if v.shape[:3] != k.shape[:3] or length == 0:
        raise ValueError(f"v {tuple(v.shape)} does not match k {tuple(k.shape)} (or L is 0)")
    block_dv = min(BLOCK_DV, dv)
    if block_dv < 16 or dv % block_dv:
        raise ValueError(f"value dim {dv} must be 16 or a multiple of {BLOCK_DV}")
    segments = max(1, math.ceil(length / SEGMENT_TOKENS))
    segment = segment_length(length, segments, BLOCK_C)
    segments = math.ceil(length / segment)
    state, den = segment_states(
        k.contiguous(),
        v.contiguous(),
        segment,
        segments,
        block_c=BLOCK_C,
        block_dv=block_dv,
        num_warps=NUM_WARPS,
    )
    state, den = state.sum(dim=1), den.sum(dim=1)  # [B*H, 273, Dv], [B*H, 272]
    second = d * d
    # The kernel keeps rows [k_i k_j (256) | k (16) | 1] with k scaled by d^(-1/4) and leaves
    # out the key side's 1/sqrt(2) of the second order; the feature map has [1 | k | k k^T].
    half = 1.0 / math.sqrt(2.0)
    first, zeroth = state[:, second : second + d], state[:, second + d :]
    s = torch.cat([zeroth, first, state[:, :second] * half], dim=1)
    count = den.new_full((b * h, 1), float(length))
    z = torch.cat([count, den[:, second:], den[:, :second] * half], dim=1)
    return s.view(b, h, -1, dv), z.view(b, h, -1)
