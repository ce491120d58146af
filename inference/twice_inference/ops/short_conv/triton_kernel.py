"""The fused kernel of ``ops.short_conv``: one program owns a [BLOCK_T, BLOCK_C] tile of one
batch row. It loads the K shifted [BLOCK_T, BLOCK_C] windows of x it needs (neighbouring rows
of one tile overlap, so the re-reads hit L1/L2, not memory), zeroes pad positions from the
mask, sums the K taps and the bias in float32, applies silu and the gate, and stores once in
x's dtype. Inputs may be strided views (BaseConv's x and gate are the two halves of one
projection); the channel stride must be 1.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_T, BLOCK_C, NUM_WARPS = 32, 128, 4


@triton.jit
def _gated_short_conv_kernel(
    x_ptr,
    m_ptr,
    w_ptr,
    b_ptr,
    g_ptr,
    y_ptr,
    T,
    C,
    stride_xb,
    stride_xt,
    stride_mb,
    stride_gb,
    stride_gt,
    stride_yb,
    stride_yt,
    K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_GATE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    pid_t = tl.program_id(0)
    pid_c = tl.program_id(1)
    row = tl.program_id(2).to(tl.int64)
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = c < C
    acc = tl.zeros((BLOCK_T, BLOCK_C), dtype=tl.float32)
    if HAS_BIAS:
        acc += tl.load(b_ptr + c, mask=c_ok, other=0.0).to(tl.float32)[None, :]
    for j in tl.static_range(K):
        src = t - (K - 1) + j
        src_ok = (src >= 0) & (src < T)
        keep = tl.load(m_ptr + row * stride_mb + src, mask=src_ok, other=0)
        ok = (src_ok & (keep != 0))[:, None] & c_ok[None, :]
        xs = tl.load(
            x_ptr + row * stride_xb + src[:, None] * stride_xt + c[None, :], mask=ok, other=0.0
        )
        w = tl.load(w_ptr + c * K + j, mask=c_ok, other=0.0).to(tl.float32)
        acc += xs.to(tl.float32) * w[None, :]
    y = acc * tl.sigmoid(acc)
    out_ok = (t < T)[:, None] & c_ok[None, :]
    if HAS_GATE:
        gate = tl.load(
            g_ptr + row * stride_gb + t[:, None] * stride_gt + c[None, :], mask=out_ok, other=0.0
        )
        y = y * gate.to(tl.float32)
    tl.store(
        y_ptr + row * stride_yb + t[:, None] * stride_yt + c[None, :],
        y.to(y_ptr.dtype.element_ty),
        mask=out_ok,
    )


def gated_short_conv(
    x: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    gate: torch.Tensor | None,
) -> torch.Tensor:
    """x [B, T, C], mask [B, T], weight [C, 1, K], bias [C] or None, gate [B, T, C] or None ->
    silu(causal depthwise conv of x with pads zeroed) (* gate), [B, T, C] in x's dtype."""
    b, t, c = x.shape
    if weight.shape[0] != c or weight.shape[1] != 1:
        raise ValueError(f"weight must be [{c}, 1, K], got {tuple(weight.shape)}")
    if mask.shape != (b, t):
        raise ValueError(f"mask must be [{b}, {t}], got {tuple(mask.shape)}")
    if gate is not None and gate.shape != x.shape:
        raise ValueError(f"gate must be {tuple(x.shape)}, got {tuple(gate.shape)}")
    if x.stride(-1) != 1:
        x = x.contiguous()
    if gate is not None and gate.stride(-1) != 1:
        gate = gate.contiguous()
    keep = mask.to(torch.int8).contiguous()
    w = weight.reshape(c, -1).contiguous()
    y = torch.empty(b, t, c, dtype=x.dtype, device=x.device)
    g = gate if gate is not None else y  # not read when HAS_GATE is off
    grid = (triton.cdiv(t, BLOCK_T), triton.cdiv(c, BLOCK_C), b)
    _gated_short_conv_kernel[grid](
        x,
        keep,
        w,
        bias if bias is not None else w,
        g,
        y,
        t,
        c,
        x.stride(0),
        x.stride(1),
        keep.stride(0),
        g.stride(0),
        g.stride(1),
        y.stride(0),
        y.stride(1),
        K=w.shape[1],
        HAS_BIAS=bias is not None,
        HAS_GATE=gate is not None,
        BLOCK_T=BLOCK_T,
        BLOCK_C=BLOCK_C,
        num_warps=NUM_WARPS,
    )
    return y
