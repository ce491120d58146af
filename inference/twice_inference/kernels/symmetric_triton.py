"""Triton prefill kernels for Taylor linear attention with the 153 symmetric features (d = 16).

(q.k)^2 only needs the 136 monomials q_i q_j with i <= j, so the state is 160 x Dv (a 128-wide
block of quadratic monomials and a 32-wide block: 16 linear, 8 more monomials, the constant 1,
7 zero pads) instead of 273 x Dv; the kernel computed is the same 1 + s + s^2/2. The encoder of
prefix linear attention is folded by a separate, sequence-parallel kernel into one state per head,
from which the causal decoder kernel starts. Tested under the Triton interpreter in
`tests/test_kernels.py`; registers read by `offline_compile`; timed by `bench.kernels`.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

FEATURE_DIM = 16  # q/k head dim; the monomial layout below is specific to 16
QUAD_BLOCK = 128  # monomials x_i x_{(i + r) mod 16}, rotation r = 0..7: 8 x 16
AUX_BLOCK = 32  # [x (16) | x_i x_{i+8}, i < 8 (8) | 1 | 0 x 7]
STATE_ROWS = QUAD_BLOCK + AUX_BLOCK
ENCODER_BLOCK_DV = 64  # the encoder kernel holds no readout operands, so one program per head fits


@triton.jit
def _quadratic_features(base, rows, valid, scale, WEIGHTED: tl.constexpr):
    """[rows, 128] bf16: the monomials x_i x_{(i+r) mod 16} (feature f: i = f mod 16,
    r = f div 16) of the rows of a [*, 16] bf16 matrix at `base`, the factors gathered by index
    loads (L1 hits). r = 0 is the diagonal: WEIGHTED (the key side) gives it weight 1/2, the other
    pairs appear once, so query x key features sum to s^2/2. Weights are powers of two and the
    scale is 16^(-1/4) = 1/2, so the one bf16 rounding is of the product itself."""
    f = tl.arange(0, 128)
    first = f & 15
    second = (first + (f >> 4)) & 15
    if WEIGHTED:
        weight = tl.where((f >> 4) == 0, 0.5 * scale * scale, scale * scale)
    else:
        weight = tl.full((128,), 1.0, tl.float32) * (scale * scale)
    ptr = base + rows[:, None] * 16
    a = tl.load(ptr + first[None, :], mask=valid[:, None], other=0.0).to(tl.float32)
    b = tl.load(ptr + second[None, :], mask=valid[:, None], other=0.0).to(tl.float32)
    return (a * b * weight[None, :]).to(tl.bfloat16)


@triton.jit
def _aux_features(base, rows, valid, scale):
    """[rows, 32] bf16, the other features: scaled x (16), the 8 monomials x_i x_{i+8} (i < 8,
    weight 1), the constant 1 (its state row is sum v) and 7 zero pads."""
    g = tl.arange(0, 32)
    ptr = base + rows[:, None] * 16
    lin_mask = valid[:, None] & (g < 24)[None, :]
    is_pair = ((g >= 16) & (g < 24))[None, :]
    a = tl.load(ptr + (g & 15)[None, :], mask=lin_mask, other=0.0).to(tl.float32)
    b = tl.load(ptr + (8 + (g & 7))[None, :], mask=valid[:, None] & is_pair, other=0.0)
    pair = a * b.to(tl.float32) * (scale * scale)
    constant = tl.where((g == 24)[None, :], 1.0, 0.0)
    feat = tl.where((g < 16)[None, :], a * scale, tl.where(is_pair, pair, constant))
    return feat.to(tl.bfloat16)


@triton.jit
def symmetric_encoder_state(
    KE,
    VE,  # encoder k [B*H, M, 16], v [B*H, M, DV]
    S_PART,  # [B*H, SEGMENTS, 160, DV] fp32: each segment's sum phi(k)^T v
    ZK_PART,  # [B*H, SEGMENTS, 16, 16] fp32: sum k k^T (scaled k), for the denominator
    Z1_PART,  # [B*H, SEGMENTS, 16] fp32: sum k (scaled)
    M,
    SEGMENT,  # tokens per segment, a multiple of BLOCK_C
    scale,
    DV: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_DV: tl.constexpr,
):
    # Non-causal, so segments are independent: the host sums their states (one per head result).
    pid_v = tl.program_id(0)
    seg = tl.program_id(1)
    pid_bh = tl.program_id(2).to(tl.int64)
    segments = tl.num_programs(1)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, 16)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    s_quad = tl.zeros((128, BLOCK_DV), dtype=tl.float32)
    s_aux = tl.zeros((32, BLOCK_DV), dtype=tl.float32)
    zk = tl.zeros((16, 16), dtype=tl.float32)
    z1 = tl.zeros((16,), dtype=tl.float32)
    ke_base = KE + pid_bh * M * 16
    ve_base = VE + pid_bh * M * DV
    seg_start = seg * SEGMENT
    seg_end = tl.minimum(seg_start + SEGMENT, M)
    for start in range(seg_start, seg_end, BLOCK_C):
        rows = start + offs_c
        valid = rows < seg_end
        v = tl.load(ve_base + rows[:, None] * DV + offs_v[None, :], mask=valid[:, None], other=0.0)
        s_quad = tl.dot(tl.trans(_quadratic_features(ke_base, rows, valid, scale, True)), v, s_quad)
        s_aux = tl.dot(tl.trans(_aux_features(ke_base, rows, valid, scale)), v, s_aux)
        k = tl.load(ke_base + rows[:, None] * 16 + offs_k[None, :], mask=valid[:, None], other=0.0)
        k = k.to(tl.float32) * scale
        zk = tl.dot(tl.trans(k), k, zk, input_precision="tf32")
        z1 += tl.sum(k, axis=0)
    part = pid_bh * segments + seg
    s_ptr = S_PART + part * (160 * DV) + offs_v[None, :]
    tl.store(s_ptr + tl.arange(0, 128)[:, None] * DV, s_quad)
    tl.store(s_ptr + (128 + tl.arange(0, 32))[:, None] * DV, s_aux)
    first_slice = pid_v == 0  # the denominator sums do not depend on the value slice
    tl.store(
        ZK_PART + part * 256 + offs_k[:, None] * 16 + offs_k[None, :],
        zk,
        mask=(offs_k[:, None] >= 0) & first_slice,
    )
    tl.store(Z1_PART + part * 16 + offs_k, z1, mask=(offs_k >= 0) & first_slice)


@triton.jit
def symmetric_causal_fwd(
    Q,
    K,
    V,
    Y,  # decoder q, k [B*H, N, 16]; v, y [B*H, N, DV]
    S_INIT,  # [B*H, 160, DV] fp32 starting state (encoder); unused unless HAS_INIT
    ZK_INIT,  # [B*H, 16, 16] fp32
    Z1_INIT,  # [B*H, 16] fp32
    N,
    M,  # encoder tokens already in the starting state (0th-order denominator count)
    scale,  # 16^(-1/4): applied to q and k so that q.k becomes q.k/sqrt(d)
    DV: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    HAS_INIT: tl.constexpr,
):
    pid_v = tl.program_id(0)  # value slice varies fastest, so slices of one head share q/k in L2
    pid_bh = tl.program_id(1).to(tl.int64)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, 16)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)

    if HAS_INIT:
        s_ptr = S_INIT + pid_bh * (160 * DV) + offs_v[None, :]
        s_quad = tl.load(s_ptr + tl.arange(0, 128)[:, None] * DV)
        s_aux = tl.load(s_ptr + (128 + tl.arange(0, 32))[:, None] * DV)
        zk = tl.load(ZK_INIT + pid_bh * 256 + offs_k[:, None] * 16 + offs_k[None, :])
        z1 = tl.load(Z1_INIT + pid_bh * 16 + offs_k)
    else:
        s_quad = tl.zeros((128, BLOCK_DV), dtype=tl.float32)
        s_aux = tl.zeros((32, BLOCK_DV), dtype=tl.float32)
        zk = tl.zeros((16, 16), dtype=tl.float32)
        z1 = tl.zeros((16,), dtype=tl.float32)

    q_base = Q + pid_bh * N * 16
    k_base = K + pid_bh * N * 16
    v_base = V + pid_bh * N * DV
    y_base = Y + pid_bh * N * DV
    causal = offs_c[:, None] >= offs_c[None, :]
    for start in range(0, N, BLOCK_C):
        rows = start + offs_c
        valid = rows < N
        v = tl.load(v_base + rows[:, None] * DV + offs_v[None, :], mask=valid[:, None], other=0.0)

        # Earlier tokens (and the encoder) through the state, into a fresh accumulator first: the
        # order that held the fewest values live in the 273-feature kernel (NOTES.md).
        num = tl.dot(
            _quadratic_features(q_base, rows, valid, scale, False),
            s_quad.to(tl.bfloat16),
        )
        num = tl.dot(_aux_features(q_base, rows, valid, scale), s_aux.to(tl.bfloat16), num)

        # Intra-chunk: the Taylor kernel 1 + s + s^2/2 of the scaled scores, causally masked.
        q = tl.load(q_base + rows[:, None] * 16 + offs_k[None, :], mask=valid[:, None], other=0.0)
        q = q.to(tl.float32) * scale
        k_t = tl.load(k_base + rows[None, :] * 16 + offs_k[:, None], mask=valid[None, :], other=0.0)
        k_t = k_t.to(tl.float32) * scale
        s = tl.dot(q.to(tl.bfloat16), k_t.to(tl.bfloat16))
        a = tl.where(causal, 1.0 + s + 0.5 * s * s, 0.0)
        num = tl.dot(a.to(tl.bfloat16), v, num)
        # Denominator: 1 + q.z1 + q^T Z q / 2 per earlier token, summed through 16 x 16 state.
        zq = tl.dot(q, zk, input_precision="tf32")
        den = tl.sum(a, axis=1) + tl.sum(q * (z1[None, :] + 0.5 * zq), axis=1)
        den += (M + start).to(tl.float32)
        tl.store(
            y_base + rows[:, None] * DV + offs_v[None, :],
            (num / den[:, None]).to(Y.dtype.element_ty),
            mask=valid[:, None],
        )

        # The update's features are built row-major and transposed through shared memory: built
        # transposed by index loads they held ~60 more registers (offline_compile, NOTES.md).
        s_quad = tl.dot(tl.trans(_quadratic_features(k_base, rows, valid, scale, True)), v, s_quad)
        s_aux = tl.dot(tl.trans(_aux_features(k_base, rows, valid, scale)), v, s_aux)
        zk = tl.dot(k_t, tl.trans(k_t), zk, input_precision="tf32")
        z1 += tl.sum(k_t, axis=1)


def sm_count() -> int:
    """Streaming multiprocessors of the current GPU; an H200's 132 under the interpreter."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
    return 132


def encoder_segments(heads_total: int, m: int, block_c: int) -> int:
    """Split the encoder so ~4 programs per SM run, but keep >= 8 chunks per segment: the
    segment states (one per head per segment, a few per head) are summed on the host."""
    want = math.ceil(4 * sm_count() / max(heads_total, 1))
    return max(1, min(want, math.ceil(m / (8 * block_c))))


def encoder_state(
    k_enc: torch.Tensor, v_enc: torch.Tensor, *, block_c: int = 64, num_warps: int = 4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One encoder state per (batch, head): S [B*H, 160, Dv], Z [B*H, 16, 16], z1 [B*H, 16], all
    fp32, from contiguous bf16 k_enc [B, H, M, 16], v_enc [B, H, M, Dv]."""
    b, h, m, _ = k_enc.shape
    dv = v_enc.shape[-1]
    # a slice width that divides Dv, so the grid covers every column (Dv 96 -> 32, not 64)
    block_dv = math.gcd(ENCODER_BLOCK_DV, dv)
    if block_dv < 16:
        raise ValueError(f"value dim {dv} needs a multiple of 16 for the encoder kernel")
    segments = encoder_segments(b * h, m, block_c)
    segment = math.ceil(math.ceil(m / segments) / block_c) * block_c
    segments = math.ceil(m / segment) if m else 1
    dev = k_enc.device
    s_part = torch.empty(b * h, segments, STATE_ROWS, dv, device=dev, dtype=torch.float32)
    zk_part = torch.empty(b * h, segments, 16, 16, device=dev, dtype=torch.float32)
    z1_part = torch.empty(b * h, segments, 16, device=dev, dtype=torch.float32)
    symmetric_encoder_state[(dv // block_dv, segments, b * h)](
        k_enc,
        v_enc,
        s_part,
        zk_part,
        z1_part,
        m,
        segment,
        FEATURE_DIM**-0.25,
        DV=dv,
        BLOCK_C=block_c,
        BLOCK_DV=block_dv,
        num_warps=num_warps,
    )
    if segments == 1:
        return s_part[:, 0], zk_part[:, 0], z1_part[:, 0]
    return s_part.sum(1), zk_part.sum(1), z1_part.sum(1)


def launch_symmetric(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor | None,
    v_enc: torch.Tensor | None,
    *,
    block_c: int = 64,
    block_dv: int = 32,
    num_warps: int = 4,
    num_stages: int = 1,
    maxnreg: int = 128,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Runs the symmetric-feature kernels on validated, contiguous inputs (see `based_triton`)."""
    b, h, n, _ = q.shape
    dv = v.shape[-1]
    y = out if out is not None else torch.empty_like(v)
    has_init = k_enc is not None and v_enc is not None
    if has_init:
        s_init, zk_init, z1_init = encoder_state(k_enc, v_enc, block_c=block_c)
        m = k_enc.shape[2]
    else:
        s_init, zk_init, z1_init, m = v, v, v, 0  # never read
    symmetric_causal_fwd[(dv // block_dv, b * h)](
        q,
        k,
        v,
        y,
        s_init,
        zk_init,
        z1_init,
        n,
        m,
        FEATURE_DIM**-0.25,
        DV=dv,
        BLOCK_C=block_c,
        BLOCK_DV=block_dv,
        HAS_INIT=has_init,
        num_warps=num_warps,
        num_stages=num_stages,
        maxnreg=maxnreg or None,  # 0: leave ptxas free (it then takes ~250 registers)
    )
    return y
