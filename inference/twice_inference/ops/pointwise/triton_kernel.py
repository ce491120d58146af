"""The kernels of ``ops.pointwise``. Both read strided views (the stacked q and k of one qkv
projection; the two halves of an MLP's fc1 output) as they are, with the last dim contiguous, do
their arithmetic in float32 and store once in the input's dtype.

Rotary: one program owns a [BLOCK_T, head dim] tile of one (stack, batch, head) row. It loads
the two rotated halves and the float32 cos and sin of those tokens (computed by the caller as the
PyTorch form computes them, so both forms rotate by the same angles), rotates, and copies the
channels past the rotated width through: one read and one write of q and k.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

ROTARY_BLOCK_T, ROTARY_WARPS = 32, 4
SWIGLU_BLOCK_T, SWIGLU_BLOCK_C, SWIGLU_WARPS = 16, 256, 4


@triton.jit
def _rotary_kernel(
    x_ptr,
    cos_ptr,
    sin_ptr,
    y_ptr,
    T,
    B,
    H,
    stride_xs,
    stride_xb,
    stride_xh,
    stride_xt,
    stride_cb,
    stride_ct,
    HALF: tl.constexpr,
    DH: tl.constexpr,
    REST: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
    BLOCK_REST: tl.constexpr,
    BLOCK_T: tl.constexpr,
):
    pid_t = tl.program_id(0)
    row = tl.program_id(1)
    h = row % H
    b = (row // H) % B
    s = row // (H * B)
    x_row = x_ptr + s.to(tl.int64) * stride_xs + b.to(tl.int64) * stride_xb + h * stride_xh
    y_row = y_ptr + row.to(tl.int64) * T * DH
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    t_ok = t < T
    j = tl.arange(0, BLOCK_HALF)
    ok = t_ok[:, None] & (j < HALF)[None, :]
    x_t = x_row + t[:, None].to(tl.int64) * stride_xt
    x1 = tl.load(x_t + j[None, :], mask=ok, other=0.0).to(tl.float32)
    x2 = tl.load(x_t + HALF + j[None, :], mask=ok, other=0.0).to(tl.float32)
    c_t = b.to(tl.int64) * stride_cb + t[:, None] * stride_ct + j[None, :]
    cos = tl.load(cos_ptr + c_t, mask=ok, other=0.0)
    sin = tl.load(sin_ptr + c_t, mask=ok, other=0.0)
    # The PyTorch form's formula; the compiler may fuse a product into the sum (an FMA), which
    # changes the float32 result by at most a rounding, far below the store's 16-bit one.
    out1 = x1 * cos - x2 * sin
    out2 = x2 * cos + x1 * sin
    y_t = y_row + t[:, None].to(tl.int64) * DH
    dtype = y_ptr.dtype.element_ty
    tl.store(y_t + j[None, :], out1.to(dtype), mask=ok)
    tl.store(y_t + HALF + j[None, :], out2.to(dtype), mask=ok)
    if REST > 0:
        r = tl.arange(0, BLOCK_REST)
        r_ok = t_ok[:, None] & (r < REST)[None, :]
        rest = tl.load(x_t + 2 * HALF + r[None, :], mask=r_ok, other=0.0)
        tl.store(y_t + 2 * HALF + r[None, :], rest, mask=r_ok)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, width: int) -> torch.Tensor:
    """x [S, B, H, T, Dh] (any strides, last dim contiguous), cos and sin [B, T, width / 2]
    float32 -> a contiguous [S, B, H, T, Dh] in x's dtype with the first ``width`` channels
    rotated (non-interleaved halves) and the rest copied."""
    s, b, h, t, dh = x.shape
    half = width // 2
    if width % 2 or not 0 < width <= dh:
        raise ValueError(f"rotary width must be even and in (0, {dh}], got {width}")
    if cos.shape != (b, t, half) or sin.shape != cos.shape:
        raise ValueError(f"cos and sin must be [{b}, {t}, {half}], got {tuple(cos.shape)}")
    if x.stride(-1) != 1:
        x = x.contiguous()
    cos, sin = cos.float().contiguous(), sin.float().contiguous()
    y = torch.empty(s, b, h, t, dh, dtype=x.dtype, device=x.device)
    rest = dh - width
    grid = (triton.cdiv(t, ROTARY_BLOCK_T), s * b * h)
    _rotary_kernel[grid](
        x,
        cos,
        sin,
        y,
        t,
        b,
        h,
        x.stride(0),
        x.stride(1),
        x.stride(2),
        x.stride(3),
        cos.stride(0),
        cos.stride(1),
        HALF=half,
        DH=dh,
        REST=rest,
        BLOCK_HALF=triton.next_power_of_2(half),
        BLOCK_REST=triton.next_power_of_2(max(rest, 1)),
        BLOCK_T=ROTARY_BLOCK_T,
        num_warps=ROTARY_WARPS,
    )
    return y


@triton.jit
def _swiglu_kernel(
    v_ptr,
    g_ptr,
    y_ptr,
    R,
    C,
    stride_vr,
    stride_gr,
    BLOCK_T: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    r = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    ok = (r < R)[:, None] & (c < C)[None, :]
    r64 = r[:, None].to(tl.int64)
    value = tl.load(v_ptr + r64 * stride_vr + c[None, :], mask=ok, other=0.0).to(tl.float32)
    gate = tl.load(g_ptr + r64 * stride_gr + c[None, :], mask=ok, other=0.0).to(tl.float32)
    y = value * (gate * tl.sigmoid(gate))
    tl.store(y_ptr + r64 * C + c[None, :], y.to(y_ptr.dtype.element_ty), mask=ok)


def swiglu(value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """value, gate [..., C] (rows may be strided, last dim contiguous) -> value * silu(gate),
    contiguous, in value's dtype."""
    if value.shape != gate.shape:
        raise ValueError(f"value {tuple(value.shape)} and gate {tuple(gate.shape)} must match")
    c = value.shape[-1]
    v2, g2 = _rows(value), _rows(gate)
    y = torch.empty(value.shape, dtype=value.dtype, device=value.device)
    grid = (triton.cdiv(v2.shape[0], SWIGLU_BLOCK_T), triton.cdiv(c, SWIGLU_BLOCK_C))
    _swiglu_kernel[grid](
        v2,
        g2,
        y,
        v2.shape[0],
        c,
        v2.stride(0),
        g2.stride(0),
        BLOCK_T=SWIGLU_BLOCK_T,
        BLOCK_C=SWIGLU_BLOCK_C,
        num_warps=SWIGLU_WARPS,
    )
    return y


def _rows(x: torch.Tensor) -> torch.Tensor:
    """[..., C] as [R, C] with one row stride: a view where the leading dims allow it (the halves
    of a [B, T, 2C] projection do), else a contiguous copy."""
    if x.stride(-1) == 1:
        try:
            return x.view(-1, x.shape[-1])
        except RuntimeError:
            pass
    return x.reshape(-1, x.shape[-1]).contiguous()
