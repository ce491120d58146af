"""Causal Based linear attention prefill (Taylor feature map, d = 16): the public entry points,
input validation, and the original 273-feature Triton kernel ("full").

The default is "full": on an H200 it beat the 153-feature "symmetric" kernel of
`symmetric_triton` (NOTES.md, v2), which stays for side-by-side timing. One program owns one
(batch, head, value-slice) and walks the sequence in chunks, keeping the running state sum
phi(k)^T v on chip (per-chunk states never reach global memory). Tested under the Triton
interpreter in `tests/test_kernels.py`; timed by `bench.kernels`.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

from twice_inference.kernels.symmetric_triton import launch_symmetric, sm_count
from twice_inference.kernels.taylor_state import (
    carried_states,
    choose_segments,
    fold_chunk,
    read_state,
    second_order,
    segment_length,
    segment_states,
)

FEATURE_DIM = 16  # q/k head dim the kernel is specialised for (273 Taylor features)


@triton.jit
def taylor_linear_attention_fwd(
    Q,
    K,
    V,
    Y,  # decoder q, k [B*H, N, DK]; v, y [B*H, N, DV]
    KE,
    VE,  # encoder k, v [B*H, M, DK] / [B*H, M, DV]; unused when HAS_ENCODER is False
    STATE,  # [B*H, SEGMENTS, 273, DV] fp32 state each segment starts from; unused unless HAS_INIT
    DEN,  # [B*H, SEGMENTS, 272] fp32: its denominator state (taylor_state's layout)
    N,
    M,  # encoder tokens (in-kernel or in STATE): the 0th-order denominator count starts there
    SEGMENT,  # decoder tokens per program along the sequence (N when not sequence-parallel)
    scale,  # d^(-1/4): applied to q and k so that q.k becomes q.k/sqrt(d)
    DK: tl.constexpr,
    DV: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_DV: tl.constexpr,
    HAS_ENCODER: tl.constexpr,
    HAS_INIT: tl.constexpr,
):
    # The 256 second-order features are handled as two halves (first factor's index < DK/2 or
    # >= DK/2), each with its own state: a single [C, 256] operand spilled more registers.
    HALF: tl.constexpr = DK // 2
    pid_v = tl.program_id(0)  # value slice varies fastest, so slices of one head share q/k in L2
    seg = tl.program_id(1)
    pid_bh = tl.program_id(2).to(tl.int64)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, DK)
    offs_h = tl.arange(0, HALF)
    offs_v = pid_v * BLOCK_DV + tl.arange(0, BLOCK_DV)

    # Running state split by Taylor order; the 0th-order numerator is sum v, denominator a count.
    # Denominator state: sum k k^T (DK x DK) gives the 2nd order through q^T Z q, far cheaper than
    # a 256-wide reduction per row; z1 = sum k.
    if HAS_INIT:
        part = pid_bh * tl.num_programs(1) + seg
        s_ptr = STATE + part * ((DK * DK + DK + 1) * DV) + offs_v[None, :]
        s2_lo = tl.load(s_ptr + tl.arange(0, HALF * DK)[:, None] * DV)
        s2_hi = tl.load(s_ptr + (HALF * DK + tl.arange(0, HALF * DK))[:, None] * DV)
        s1 = tl.load(s_ptr + (DK * DK + offs_k)[:, None] * DV)
        s0 = tl.load(STATE + part * ((DK * DK + DK + 1) * DV) + (DK * DK + DK) * DV + offs_v)
        d_ptr = DEN + part * (DK * DK + DK)
        zk = tl.load(d_ptr + offs_k[:, None] * DK + offs_k[None, :])
        z1 = tl.load(d_ptr + DK * DK + offs_k)
    else:
        s2_lo = tl.zeros((HALF * DK, BLOCK_DV), dtype=tl.float32)
        s2_hi = tl.zeros((HALF * DK, BLOCK_DV), dtype=tl.float32)
        s1 = tl.zeros((DK, BLOCK_DV), dtype=tl.float32)
        s0 = tl.zeros((BLOCK_DV,), dtype=tl.float32)
        zk = tl.zeros((DK, DK), dtype=tl.float32)
        z1 = tl.zeros((DK,), dtype=tl.float32)

    if HAS_ENCODER:
        ke_base = KE + pid_bh * M * DK
        ve_base = VE + pid_bh * M * DV
        for start in range(0, M, BLOCK_C):
            rows = start + offs_c
            valid = rows < M
            v = tl.load(
                ve_base + rows[:, None] * DV + offs_v[None, :], mask=valid[:, None], other=0.0
            )
            s2_lo, s2_hi, s1, s0, zk, z1 = fold_chunk(
                ke_base + rows[:, None] * DK,
                v,
                valid,
                s2_lo,
                s2_hi,
                s1,
                s0,
                zk,
                z1,
                scale,
                BLOCK_C,
                DK,
            )

    q_base = Q + pid_bh * N * DK
    k_base = K + pid_bh * N * DK
    v_base = V + pid_bh * N * DV
    y_base = Y + pid_bh * N * DV
    causal = offs_c[:, None] >= offs_c[None, :]
    seg_end = tl.minimum((seg + 1) * SEGMENT, N)
    for start in range(seg * SEGMENT, seg_end, BLOCK_C):
        rows = start + offs_c
        valid = rows < seg_end
        q_ptr = q_base + rows[:, None] * DK
        k_ptr = k_base + rows[:, None] * DK
        q = tl.load(q_ptr + offs_k[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
        k = tl.load(k_ptr + offs_k[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
        v = tl.load(v_base + rows[:, None] * DV + offs_v[None, :], mask=valid[:, None], other=0.0)
        q_bf = q.to(tl.bfloat16)
        k_bf = k.to(tl.bfloat16)

        # Inter-chunk first: every earlier token (and the encoder) through the on-chip state. This
        # order (state readout, then the intra-chunk block) keeps the fewest values live; other
        # orders spilled (NOTES.md).
        num = read_state(q_ptr, q, valid, s2_lo, s2_hi, s1, s0, scale, BLOCK_C, BLOCK_DV, DK)

        # Intra-chunk: the Taylor kernel 1 + s + s^2/2 of the scaled scores, causally masked.
        s = tl.dot(q_bf, tl.trans(k_bf))
        a = tl.where(causal, 1.0 + s + 0.5 * s * s, 0.0)
        num = tl.dot(a.to(tl.bfloat16), v, num)
        den = tl.sum(a, axis=1)
        zq = tl.dot(q, zk, input_precision="tf32")  # [C, DK]: (Z q)_a per row
        den += tl.sum(q * (z1[None, :] + 0.5 * zq), axis=1) + (M + start).to(tl.float32)

        y = num / den[:, None]
        tl.store(
            y_base + rows[:, None] * DV + offs_v[None, :],
            y.to(Y.dtype.element_ty),
            mask=valid[:, None],
        )

        k_lo = (
            tl.load(k_ptr + offs_h[None, :], mask=valid[:, None], other=0.0).to(tl.float32) * scale
        )
        s2_lo = tl.dot(tl.trans(second_order(k_lo, k, BLOCK_C, HALF, DK)), v, s2_lo)
        k_hi = (
            tl.load(k_ptr + HALF + offs_h[None, :], mask=valid[:, None], other=0.0).to(tl.float32)
            * scale
        )
        s2_hi = tl.dot(tl.trans(second_order(k_hi, k, BLOCK_C, HALF, DK)), v, s2_hi)
        s1 = tl.dot(tl.trans(k_bf), v, s1)
        s0 += tl.sum(v.to(tl.float32), axis=0)
        zk = tl.dot(tl.trans(k), k, zk, input_precision="tf32")
        z1 += tl.sum(k, axis=0)


def _check_inputs(names: tuple[str, ...], tensors: tuple[torch.Tensor, ...], dv: int) -> None:
    for name, t in zip(names, tensors, strict=True):
        if t.dtype != torch.bfloat16:
            raise ValueError(f"{name} must be bfloat16, got {t.dtype}")
        if t.ndim != 4:
            raise ValueError(f"{name} must be [B, H, N, D], got shape {tuple(t.shape)}")
    for name, t in zip(names, tensors, strict=True):
        want = FEATURE_DIM if name.startswith(("q", "k")) else dv
        if t.shape[-1] != want:
            raise ValueError(f"{name} last dim must be {want}, got {t.shape[-1]}")
        if t.shape[:2] != tensors[0].shape[:2]:
            raise ValueError(
                f"{name} batch/heads {tuple(t.shape[:2])} != q's {tuple(tensors[0].shape[:2])}"
            )


def validated(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor | None,
    v_enc: torch.Tensor | None,
    block_dv: int,
) -> tuple[torch.Tensor, ...]:
    """Checks dtypes, shapes and the value slice; returns contiguous (q, k, v, k_enc, v_enc)."""
    dv = v.shape[-1]
    names: tuple[str, ...] = ("q", "k", "v")
    tensors: tuple[torch.Tensor, ...] = (q, k, v)
    if k_enc is not None or v_enc is not None:
        if k_enc is None or v_enc is None:
            raise ValueError("k_enc and v_enc must be given together")
        names, tensors = names + ("k_enc", "v_enc"), tensors + (k_enc, v_enc)
        if k_enc.shape[2] != v_enc.shape[2]:
            raise ValueError(f"k_enc length {k_enc.shape[2]} != v_enc length {v_enc.shape[2]}")
    _check_inputs(names, tensors, dv)
    if k.shape[2] != q.shape[2] or v.shape[2] != q.shape[2]:
        raise ValueError(f"q/k/v lengths differ: {q.shape[2]}, {k.shape[2]}, {v.shape[2]}")
    if block_dv < 16 or dv % block_dv != 0:
        raise ValueError(f"value dim {dv} not divisible by block_dv={block_dv} (>= 16)")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    if k_enc is not None and v_enc is not None:
        k_enc, v_enc = k_enc.contiguous(), v_enc.contiguous()
    return q, k, v, k_enc, v_enc


def launch_full(
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
    maxnreg: int = 0,
    segments: int = 0,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The 273-feature kernel on validated, contiguous inputs; returns y. ``segments``: how many
    pieces the sequence is cut into and run in parallel (``taylor_state``); 1 is the plain chain
    with the encoder folded in-kernel, 0 lets the cost model choose."""
    b, h, n, _ = q.shape
    dv = v.shape[-1]
    has_enc = k_enc is not None and v_enc is not None
    m = k_enc.shape[2] if k_enc is not None else 0
    if segments < 0:
        raise ValueError(f"segments must be >= 0 (0: chosen by the cost model), got {segments}")
    if segments == 0:
        segments = choose_segments((dv // block_dv) * b * h, n, block_c, sm_count())
    segment = segment_length(n, segments, block_c)
    segments = math.ceil(n / segment)
    y = out if out is not None else torch.empty_like(v)
    state_kw = dict(block_c=block_c, block_dv=block_dv, num_warps=num_warps)
    if segments > 1:
        base = None
        if k_enc is not None and v_enc is not None:
            enc_segments = math.ceil(m / segment)
            enc_state, enc_den = segment_states(k_enc, v_enc, segment, enc_segments, **state_kw)
            base = (enc_state.sum(1), enc_den.sum(1))
        state, den = carried_states(*segment_states(k, v, segment, segments - 1, **state_kw), base)
        has_enc = False
    else:
        state, den = v, v  # never read
    ke = k_enc if has_enc and k_enc is not None else k
    ve = v_enc if has_enc and v_enc is not None else v
    taylor_linear_attention_fwd[(dv // block_dv, segments, b * h)](
        q,
        k,
        v,
        y,
        ke,
        ve,
        state,
        den,
        n,
        m,
        segment,
        FEATURE_DIM**-0.25,
        DK=FEATURE_DIM,
        DV=dv,
        BLOCK_C=block_c,
        BLOCK_DV=block_dv,
        HAS_ENCODER=has_enc,
        HAS_INIT=segments > 1,
        num_warps=num_warps,
        num_stages=num_stages,
        maxnreg=maxnreg or None,
    )
    return y


# Fastest correct config per kernel variant. maxnreg caps registers per thread (0: no cap), which
# sets how many programs share an SM. Both were the fastest of their variant on an H200 (NOTES.md).
CONFIG_KEYS = ("block_c", "block_dv", "num_warps", "num_stages", "maxnreg")
# "full" also takes `segments` (0: the cost model in taylor_state chooses; 1: the plain chain).
DEFAULT_CONFIGS: dict[str, dict[str, int]] = {
    "full": dict(zip(CONFIG_KEYS, (64, 32, 4, 1, 0), strict=True)) | {"segments": 0},
    "symmetric": dict(zip(CONFIG_KEYS, (64, 32, 4, 1, 168), strict=True)),
}
FEATURES = tuple(DEFAULT_CONFIGS)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_enc: torch.Tensor | None,
    v_enc: torch.Tensor | None,
    *,
    features: str = "full",
    out: torch.Tensor | None = None,
    **config: int,
) -> torch.Tensor:
    """Validates, fills the config from the variant's defaults and runs the chosen kernel:
    "symmetric" (153 features, encoder folded by its own parallel kernel) or "full" (273)."""
    if features not in DEFAULT_CONFIGS:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    unknown = set(config) - set(DEFAULT_CONFIGS[features])
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    kw = DEFAULT_CONFIGS[features] | config
    if "block_dv" not in config:  # small value dims (tiny test models) take one slice
        kw["block_dv"] = min(kw["block_dv"], v.shape[-1])
    q, k, v, k_enc, v_enc = validated(q, k, v, k_enc, v_enc, kw["block_dv"])
    run = launch_symmetric if features == "symmetric" else launch_full
    return run(q, k, v, k_enc, v_enc, out=out, **kw)


def based_causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    features: str = "full",
    out: torch.Tensor | None = None,
    **config: int,
) -> torch.Tensor:
    """Causal Based linear attention prefill. q, k: [B, H, N, 16] bf16; v: [B, H, N, Dv] bf16.
    Returns y [B, H, N, Dv] bf16 with fp32 accumulation. `features` picks the kernel ("symmetric",
    the fast default, or the 273-feature "full"); `config` overrides block_c, block_dv,
    num_warps, num_stages, maxnreg; `out` receives y when given."""
    return attention(q, k, v, None, None, features=features, out=out, **config)


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"
