"""Causal Taylor linear attention with a fixed per-head decay and a per-position output scale
(based-360m-30b's layer, ``ops.linear_attention.decayed``): the Triton prefill kernel.

    y_i = dt_i * sum_{j<=i} gamma^(i-j) (phi(q_i) . phi(k_j)) v_j / sum_{j<=i} phi(q_i) . phi(k_j)

The same chain as ``based_triton``'s 273-feature kernel (one program per (batch, head, value
slice) walking the sequence in chunks, the state split by Taylor order on chip) with the decay
put where the chunked form needs it: the in-chunk scores weighted by gamma^(i-j); the state read
out at row i of a chunk weighted by gamma^(i+1), since it holds every earlier key decayed to the
position before the chunk; and the state update decaying the carried state by gamma^L (L = the
chunk's tokens) and each key by gamma^(L-1-j), its distance to the chunk's last token. The
normaliser is not decayed. The program ends by writing the state the recurrent form continues
from, in ``taylor_feature_map``'s layout: s = sum_j gamma^(T-1-j) phi(k_j)^T v_j (decayed) and
z = sum_j phi(k_j) (plain).

q, k, v, dt are read through their strides, so the projections' outputs ([B, T, H*D] viewed as
[B, H, T, D]) need no transposed copy, and y can be written into a [B, T, H, Dv] buffer that the
output projection reads as it is. Tested under the Triton interpreter in
``tests/test_decay_kernel.py``; checked and timed on a GPU by ``bench.kernels`` (``decay_checks``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from twice_inference.kernels.taylor_state import fold_chunk, read_state

FEATURE_DIM = 16
FEATURES = 1 + FEATURE_DIM + FEATURE_DIM * FEATURE_DIM  # 273
BLOCK_C = 64
BLOCK_DV = 32


@triton.jit
def decayed_taylor_fwd(
    Q,
    K,
    V,
    DT,  # [B, H, T] (strided) output scale; unused when HAS_SCALE is False
    LOG_G,  # [H] fp32 log(gamma_h)
    Y,
    S_OUT,  # [B*H, 273, DV] fp32, taylor_feature_map's row order
    Z_OUT,  # [B*H, 273] fp32
    N,
    H,
    sq_b,
    sq_h,
    sq_t,
    sk_b,
    sk_h,
    sk_t,
    sv_b,
    sv_h,
    sv_t,
    sd_b,
    sd_h,
    sd_t,
    sy_b,
    sy_h,
    sy_t,
    scale,  # d^(-1/4), applied to q and k so that q.k becomes q.k/sqrt(d)
    DK: tl.constexpr,
    DV: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    HAS_SCALE: tl.constexpr,
):
    HALF: tl.constexpr = DK // 2
    pid_v = tl.program_id(0)
    pid_bh = tl.program_id(1).to(tl.int64)
    b = pid_bh // H
    h = pid_bh % H
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, DK)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)
    lg = tl.load(LOG_G + h).to(tl.float32)

    s2_lo = tl.zeros((HALF * DK, BLOCK_DV), dtype=tl.float32)
    s2_hi = tl.zeros((HALF * DK, BLOCK_DV), dtype=tl.float32)
    s1 = tl.zeros((DK, BLOCK_DV), dtype=tl.float32)
    s0 = tl.zeros((BLOCK_DV,), dtype=tl.float32)
    zk = tl.zeros((DK, DK), dtype=tl.float32)
    z1 = tl.zeros((DK,), dtype=tl.float32)

    causal = offs_c[:, None] >= offs_c[None, :]
    gap = (offs_c[:, None] - offs_c[None, :]).to(tl.float32)
    # gamma^(i-j) on and below the diagonal; the exponent is clamped so the masked half cannot
    # overflow (lg < 0, so a negative gap would grow without bound)
    within = tl.where(causal, tl.exp(lg * tl.maximum(gap, 0.0)), 0.0)
    from_state = tl.exp(lg * (offs_c + 1).to(tl.float32))  # gamma^(i+1)

    q_base = Q + b * sq_b + h * sq_h
    k_base = K + b * sk_b + h * sk_h
    v_base = V + b * sv_b + h * sv_h
    y_base = Y + b * sy_b + h * sy_h
    for start in range(0, N, BLOCK_C):
        rows = start + offs_c
        valid = rows < N
        q_ptr = q_base + rows[:, None] * sq_t
        k_ptr = k_base + rows[:, None] * sk_t
        q = tl.load(q_ptr + offs_k[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
        k = tl.load(k_ptr + offs_k[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
        v = tl.load(v_base + rows[:, None] * sv_t + offs_v[None, :], mask=valid[:, None], other=0.0)
        q_bf = q.to(tl.bfloat16)
        k_bf = k.to(tl.bfloat16)

        # Every earlier token through the carried (decayed) state, then decayed to row i.
        carried = read_state(q_ptr, q, valid, s2_lo, s2_hi, s1, s0, scale, BLOCK_C, BLOCK_DV, DK)
        num = carried * from_state[:, None]

        # In-chunk: the Taylor kernel 1 + s + s^2/2, decayed in the numerator only.
        s = tl.dot(q_bf, tl.trans(k_bf))
        a = tl.where(causal, 1.0 + s + 0.5 * s * s, 0.0)
        num = tl.dot((a * within).to(tl.bfloat16), v, num)
        den = tl.sum(a, axis=1)
        zq = tl.dot(q, zk, input_precision="tf32")
        den += tl.sum(q * (z1[None, :] + 0.5 * zq), axis=1) + start * 1.0
        if HAS_SCALE:
            dt = tl.load(DT + b * sd_b + h * sd_h + rows * sd_t, mask=valid, other=0.0)
            num = num * dt.to(tl.float32)[:, None]
        y = num / den[:, None]
        tl.store(
            y_base + rows[:, None] * sy_t + offs_v[None, :],
            y.to(Y.dtype.element_ty),
            mask=valid[:, None],
        )

        # State update: carried state decayed over the chunk's L tokens, key j by gamma^(L-1-j)
        # (through v); the normaliser sums are not decayed.
        count = tl.minimum(N - start, BLOCK_C)
        to_end = tl.where(valid, tl.exp(lg * (count - 1 - offs_c).to(tl.float32)), 0.0)
        vw = (v.to(tl.float32) * to_end[:, None]).to(tl.bfloat16)
        over_chunk = tl.exp(lg * count.to(tl.float32))
        s2_lo, s2_hi, s1, s0, zk, z1 = fold_chunk(
            k_ptr,
            vw,
            valid,
            s2_lo * over_chunk,
            s2_hi * over_chunk,
            s1 * over_chunk,
            s0 * over_chunk,
            zk,
            z1,
            scale,
            BLOCK_C,
            DK,
        )

    # The final state in taylor_feature_map's rows: [1 | x / d^(1/4) | x x^T / (sqrt(2) sqrt(d))];
    # the kernel's second-order sums are of the scaled k, so they carry the 1/sqrt(2) still.
    inv_sqrt2 = 0.7071067811865476
    s_ptr = S_OUT + pid_bh * (1 + DK + DK * DK) * DV + offs_v
    tl.store(s_ptr, s0)
    tl.store(s_ptr + (1 + offs_k)[:, None] * DV, s1)
    second = 1 + DK + tl.arange(0, HALF * DK)
    tl.store(s_ptr + second[:, None] * DV, s2_lo * inv_sqrt2)
    tl.store(s_ptr + (HALF * DK + second)[:, None] * DV, s2_hi * inv_sqrt2)
    first_slice = pid_v == 0  # z does not depend on the value slice
    z_ptr = Z_OUT + pid_bh * (1 + DK + DK * DK)
    count_all = tl.zeros((DK,), dtype=tl.float32) + N  # phi's constant feature, summed
    tl.store(z_ptr + offs_k, count_all, mask=(offs_k == 0) & first_slice)
    tl.store(z_ptr + 1 + offs_k, z1, mask=(offs_k >= 0) & first_slice)
    tl.store(
        z_ptr + 1 + DK + offs_k[:, None] * DK + offs_k[None, :],
        zk * inv_sqrt2,
        mask=(offs_k[:, None] >= 0) & first_slice,
    )


def _check(name: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
    if t.dtype != torch.bfloat16:
        raise ValueError(f"{name} must be bfloat16, got {t.dtype}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")


def _unit_last(t: torch.Tensor) -> torch.Tensor:
    """The kernel reads rows through strides but the last dim densely."""
    return t if t.stride(-1) == 1 or t.shape[-1] == 1 else t.contiguous()


def decayed_taylor_prefill(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_gamma: torch.Tensor,
    dt: torch.Tensor | None,
    *,
    block_dv: int = BLOCK_DV,
    num_warps: int = 4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k [B, H, T, 16], v [B, H, T, Dv], dt [B, H, T] or None, all bf16 and any strides with a
    dense last dim; log_gamma [H] (float). Returns (y [B, H, T, Dv] bf16, a view of a
    [B, T, H, Dv] buffer; s [B, H, 273, Dv] fp32 decayed state; z [B, H, 273] fp32 plain
    normaliser state)."""
    if q.ndim != 4:
        raise ValueError(f"q must be [B, H, T, 16], got shape {tuple(q.shape)}")
    b, h, n, _ = q.shape
    dv = v.shape[-1]
    _check("q", q, (b, h, n, FEATURE_DIM))
    _check("k", k, (b, h, n, FEATURE_DIM))
    _check("v", v, (b, h, n, dv))
    if dt is not None:
        _check("dt", dt, (b, h, n))
    if tuple(log_gamma.shape) != (h,):
        raise ValueError(f"log_gamma must have shape ({h},), got {tuple(log_gamma.shape)}")
    block_dv = min(block_dv, dv)
    if block_dv < 16 or block_dv & (block_dv - 1) or dv % block_dv:
        raise ValueError(
            f"value dim {dv} must be a multiple of block_dv={block_dv}, a power of 2 >= 16"
        )
    q, k, v = _unit_last(q), _unit_last(k), _unit_last(v)
    lg = log_gamma.to(device=q.device, dtype=torch.float32).contiguous()
    y = torch.empty(b, n, h, dv, device=q.device, dtype=torch.bfloat16).transpose(1, 2)
    s = torch.empty(b, h, FEATURES, dv, device=q.device, dtype=torch.float32)
    z = torch.empty(b, h, FEATURES, device=q.device, dtype=torch.float32)
    scale_t = dt if dt is not None else v  # never read without HAS_SCALE
    sd = dt.stride() if dt is not None else (0, 0, 0)
    decayed_taylor_fwd[(dv // block_dv, b * h)](
        q,
        k,
        v,
        scale_t,
        lg,
        y,
        s,
        z,
        n,
        h,
        q.stride(0),
        q.stride(1),
        q.stride(2),
        k.stride(0),
        k.stride(1),
        k.stride(2),
        v.stride(0),
        v.stride(1),
        v.stride(2),
        *sd,
        y.stride(0),
        y.stride(1),
        y.stride(2),
        FEATURE_DIM**-0.25,
        DK=FEATURE_DIM,
        DV=dv,
        BLOCK_C=BLOCK_C,
        BLOCK_DV=block_dv,
        HAS_SCALE=dt is not None,
        num_warps=num_warps,
        num_stages=1,
    )
    return y, s, z
