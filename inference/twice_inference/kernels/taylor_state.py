"""Sequence-parallel pieces of the 273-feature Taylor kernel ("full"): a kernel that folds each
segment of a sequence into its state (no outputs), the host-side scan that turns segment states
into the state each segment starts from, and the cost model that picks how many segments a
prefill is cut into.

Why: one program per (batch, head, value slice) walks its sequence chunk after chunk, and each
64-token chunk is a chain of dependent steps (~8 us on an H200, NOTES.md). With fewer programs
than the GPU holds at once (small batches), most of the GPU idles while those chains run. Cutting
the sequence into S segments runs S times as many, S times shorter chains: first every segment's
state sum in parallel (this module), then a short scan over the S states per head, then the
causal kernel on every segment at once, each starting from the state carried in.
Tested under the Triton interpreter in ``tests/test_kernels.py``; timed by ``bench.kernels``.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

FEATURE_DIM = 16
# State rows per value column: 256 second-order (two 128-row halves), 16 first-order, 1 zeroth.
STATE_ROWS = FEATURE_DIM * FEATURE_DIM + FEATURE_DIM + 1
# Denominator state per head: sum k k^T (16 x 16) and sum k (16), both of the scaled k.
DEN_SIZE = FEATURE_DIM * FEATURE_DIM + FEATURE_DIM


@triton.jit
def second_order(x_part, x, ROWS: tl.constexpr, PART: tl.constexpr, DK: tl.constexpr):
    """Rows of x_part (x) x flattened to PART*DK bf16 columns (x_part = a slice of x's columns;
    both fp32, already scaled by d^(-1/4)). Products round to bf16 before the reshape, which halves
    its registers; the 1/sqrt(2) of each side is applied once, as 1/2 on the state."""
    outer = (x_part[:, :, None] * x[:, None, :]).to(tl.bfloat16)
    return tl.reshape(outer, (ROWS, PART * DK))


@triton.jit
def fold_chunk(
    k_ptr,  # [BLOCK_C, 1] row pointers into k (DK columns each)
    v,  # [BLOCK_C, BLOCK_DV] bf16, zero on invalid rows
    valid,
    s2_lo,
    s2_hi,
    s1,
    s0,
    zk,
    z1,
    scale,
    BLOCK_C: tl.constexpr,
    DK: tl.constexpr,
):
    """Adds one chunk of keys and values to the running state (no outputs): the update half of
    the causal kernel's chunk step, shared by the segment-state kernel and the in-kernel encoder
    fold of `based_triton`."""
    HALF: tl.constexpr = DK // 2
    offs_k = tl.arange(0, DK)
    offs_h = tl.arange(0, HALF)
    k = tl.load(k_ptr + offs_k[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
    k_lo = tl.load(k_ptr + offs_h[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
    s2_lo = tl.dot(tl.trans(second_order(k_lo, k, BLOCK_C, HALF, DK)), v, s2_lo)
    k_hi = (
        tl.load(k_ptr + HALF + offs_h[None, :], mask=valid[:, None], other=0.0).to(tl.float32)
        * scale
    )
    s2_hi = tl.dot(tl.trans(second_order(k_hi, k, BLOCK_C, HALF, DK)), v, s2_hi)
    s1 = tl.dot(tl.trans(k.to(tl.bfloat16)), v, s1)
    s0 += tl.sum(v.to(tl.float32), axis=0)
    zk = tl.dot(tl.trans(k), k, zk, input_precision="tf32")
    z1 += tl.sum(k, axis=0)
    return s2_lo, s2_hi, s1, s0, zk, z1


@triton.jit
def read_state(
    q_ptr,  # [BLOCK_C, 1] row pointers into q (DK columns each)
    q,  # [BLOCK_C, DK] fp32, scaled, zero on invalid rows
    valid,
    s2_lo,
    s2_hi,
    s1,
    s0,
    scale,
    BLOCK_C: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    DK: tl.constexpr,
):
    """phi(q_i) . state for one chunk of rows: the readout half of the causal kernels' chunk step
    (``based_triton``'s and ``decay_triton``'s). The column halves are re-read from L1 where they
    are used, which keeps the fewest values live (NOTES.md)."""
    HALF: tl.constexpr = DK // 2
    offs_h = tl.arange(0, HALF)
    num = tl.zeros((BLOCK_C, BLOCK_DV), dtype=tl.float32)
    q_lo = tl.load(q_ptr + offs_h[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
    num = tl.dot(second_order(q_lo, q, BLOCK_C, HALF, DK), (0.5 * s2_lo).to(tl.bfloat16), num)
    q_hi = (
        tl.load(q_ptr + HALF + offs_h[None, :], mask=valid[:, None], other=0.0).to(tl.float32)
        * scale
    )
    num = tl.dot(second_order(q_hi, q, BLOCK_C, HALF, DK), (0.5 * s2_hi).to(tl.bfloat16), num)
    num = tl.dot(q.to(tl.bfloat16), s1.to(tl.bfloat16), num)
    return num + s0[None, :]


@triton.jit
def taylor_segment_state(
    K,
    V,  # k [B*H, L, DK], v [B*H, L, DV] bf16
    STATE,  # [B*H, SEGMENTS, STATE_ROWS, DV] fp32: rows s2 (256) | s1 (16) | s0 (1)
    DEN,  # [B*H, SEGMENTS, DEN_SIZE] fp32: sum k k^T (256) | sum k (16)
    L,
    SEGMENT,  # tokens per segment, a multiple of BLOCK_C
    scale,
    DK: tl.constexpr,
    DV: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    # The update half of the causal kernel's chunk loop, over one segment; segments are
    # independent, so every (value slice, segment, head) is its own program.
    HALF: tl.constexpr = DK // 2
    pid_v = tl.program_id(0)
    seg = tl.program_id(1)
    pid_bh = tl.program_id(2).to(tl.int64)
    segments = tl.num_programs(1)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, DK)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    s2_lo = tl.zeros((HALF * DK, BLOCK_DV), dtype=tl.float32)
    s2_hi = tl.zeros((HALF * DK, BLOCK_DV), dtype=tl.float32)
    s1 = tl.zeros((DK, BLOCK_DV), dtype=tl.float32)
    s0 = tl.zeros((BLOCK_DV,), dtype=tl.float32)
    zk = tl.zeros((DK, DK), dtype=tl.float32)
    z1 = tl.zeros((DK,), dtype=tl.float32)
    k_base = K + pid_bh * L * DK
    v_base = V + pid_bh * L * DV
    seg_start = seg * SEGMENT
    seg_end = tl.minimum(seg_start + SEGMENT, L)
    for start in range(seg_start, seg_end, BLOCK_C):
        rows = start + offs_c
        valid = rows < seg_end
        v = tl.load(v_base + rows[:, None] * DV + offs_v[None, :], mask=valid[:, None], other=0.0)
        s2_lo, s2_hi, s1, s0, zk, z1 = fold_chunk(
            k_base + rows[:, None] * DK, v, valid, s2_lo, s2_hi, s1, s0, zk, z1, scale, BLOCK_C, DK
        )
    part = pid_bh * segments + seg
    rows_per_part = DK * DK + DK + 1  # STATE_ROWS (a Python global is not visible here)
    s_ptr = STATE + part * (rows_per_part * DV) + offs_v[None, :]
    tl.store(s_ptr + tl.arange(0, HALF * DK)[:, None] * DV, s2_lo)
    tl.store(s_ptr + (HALF * DK + tl.arange(0, HALF * DK))[:, None] * DV, s2_hi)
    tl.store(s_ptr + (2 * HALF * DK + offs_k)[:, None] * DV, s1)
    tl.store(STATE + part * (rows_per_part * DV) + (DK * DK + DK) * DV + offs_v, s0)
    first_slice = pid_v == 0  # the denominator sums do not depend on the value slice
    d_ptr = DEN + part * (DK * DK + DK)
    tl.store(
        d_ptr + offs_k[:, None] * DK + offs_k[None, :],
        zk,
        mask=(offs_k[:, None] >= 0) & first_slice,
    )
    tl.store(d_ptr + DK * DK + offs_k, z1, mask=(offs_k >= 0) & first_slice)


def segment_length(length: int, segments: int, block_c: int) -> int:
    """Tokens per segment: whole chunks, so only the last segment is ragged."""
    return max(block_c, math.ceil(math.ceil(length / segments) / block_c) * block_c)


def segment_states(
    k: torch.Tensor,
    v: torch.Tensor,
    segment: int,
    segments: int,
    *,
    block_c: int,
    block_dv: int,
    num_warps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The state sums of the first ``segments`` segments of ``segment`` tokens of contiguous bf16
    k [B, H, L, 16], v [B, H, L, Dv]: (state [B*H, segments, 273, Dv], den [B*H, segments, 272]),
    fp32."""
    b, h, length, _ = k.shape
    dv = v.shape[-1]
    state = torch.empty(b * h, segments, STATE_ROWS, dv, device=k.device, dtype=torch.float32)
    den = torch.empty(b * h, segments, DEN_SIZE, device=k.device, dtype=torch.float32)
    if segments:
        taylor_segment_state[(dv // block_dv, segments, b * h)](
            k,
            v,
            state,
            den,
            length,
            segment,
            FEATURE_DIM**-0.25,
            DK=FEATURE_DIM,
            DV=dv,
            BLOCK_C=block_c,
            BLOCK_DV=block_dv,
            num_warps=num_warps,
        )
    return state, den


def carried_states(
    state: torch.Tensor, den: torch.Tensor, base: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exclusive scan over segments: what segment s starts from is the sum of segments < s (plus
    ``base``, the encoder's state, for every segment). Input: the states of all segments but the
    last; output: one starting state per segment, the first zero (or ``base``)."""
    bh, _, rows, dv = state.shape
    start = state.new_zeros(bh, state.shape[1] + 1, rows, dv)
    start_den = den.new_zeros(bh, den.shape[1] + 1, den.shape[2])
    torch.cumsum(state, dim=1, out=start[:, 1:])
    torch.cumsum(den, dim=1, out=start_den[:, 1:])
    if base is not None:
        start += base[0][:, None]
        start_den += base[1][:, None]
    return start, start_den


# Cost model for the number of segments, fitted to the H200 (kernel-bench-v3 in
# docs/measurements): a chain program alone on an SM takes time 1 per token; an SM holds
# PROGRAMS_PER_SM of them (registers), and then each runs SHARED_TIME slower (B = 2 and 4 at
# N = 16384: 2.09 / 2.21 ms; B = 8, two per SM: 2.73 ms). Programs run in waves of
# PROGRAMS_PER_SM x SMs; a last partial wave of at most one program per SM runs at full speed.
# The state-sum kernel costs STATE_COST of the chain kernel per token (measured 0.378).
PROGRAMS_PER_SM = 2
SHARED_TIME = 1.31
STATE_COST = 0.38
MIN_SEGMENT_CHUNKS = 4  # shorter segments pay more in launches and state traffic than they save
MAX_SEGMENTS = 64


def _relative_time(programs: int, sms: int) -> float:
    """Time of `programs` equal programs relative to one program alone on an SM."""
    full, rest = divmod(programs, PROGRAMS_PER_SM * sms)
    last = 0.0 if rest == 0 else 1.0 if rest <= sms else SHARED_TIME
    return full * SHARED_TIME + last


@functools.lru_cache(maxsize=256)  # called per launch: keep the host side cheap
def choose_segments(programs: int, length: int, block_c: int, sms: int) -> int:
    """Segments (1 = the plain chain) that minimise the modelled time of a prefill whose chain
    kernel would launch ``programs`` programs over ``length`` tokens."""
    chunks = math.ceil(length / block_c)
    best, best_time = 1, _relative_time(programs, sms)
    for segments in range(2, MAX_SEGMENTS + 1):
        if chunks < segments * MIN_SEGMENT_CHUNKS:
            break
        per_segment = 1.0 / segments
        t = per_segment * (
            STATE_COST * _relative_time(programs * (segments - 1), sms)
            + _relative_time(programs * segments, sms)
        )
        if t < best_time * 0.95:  # a clear win only: the model is coarse
            best, best_time = segments, t
    return best
