"""Triton prefill for Mamba-1's selective scan (the op ``ops.selective_scan``).

h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t,  y_t = h_t C_t, per batch row and channel d, with a
state of N (d_state) numbers per channel. One program owns BLOCK_D channels of one batch row and
walks the sequence once, the [BLOCK_D, N] float32 state in registers: each step reads x, dt (one
coalesced row slice each), B and C (N numbers shared by every channel of the row, L1/L2 hits) and
writes y. The next step's inputs are loaded before this step's arithmetic, so a load's latency
overlaps a step's work instead of adding to it. Channels are independent, so a batch of
Bt rows and Di channels gives Bt * Di / BLOCK_D programs: thousands at the paper's sizes, which
keeps every SM busy although each program is a serial chain. The PyTorch chunked form materialises
[Bt, chunk, chunk, Di, N] decays instead; this reads each input once.

Tested under the Triton interpreter against the float64 reference (``tests/test_scan_kernels.py``);
timed against the chunked PyTorch form by ``bench.scans``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# (BLOCK_D, num_warps). bench.scans on an H200 (B 32, T 2000): fastest at Di 1536 (1.17 ms);
# at Di 4096 2.41 ms against 2.32 for (32, 1), within 4%. docs/measurements/2026-11-29-*scans*.
DEFAULT_CONFIG = (64, 2)


@triton.jit
def _selective_scan_kernel(
    x_ptr,
    dt_ptr,
    a_ptr,
    b_ptr,
    c_ptr,
    h0_ptr,
    y_ptr,
    ht_ptr,
    T,
    D,
    N,
    stride_xb,
    stride_xt,
    stride_dtb,
    stride_dtt,
    stride_bb,
    stride_bt,
    stride_cb,
    stride_ct,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    pid_d = tl.program_id(0)
    row = tl.program_id(1).to(tl.int64)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, BLOCK_N)
    d_ok = d < D
    dn_ok = d_ok[:, None] & (n[None, :] < N)
    n_ok = n < N
    dn = d[:, None] * N + n[None, :]
    # exp(dt A) as exp2(dt A log2 e): one multiply folded into A once
    a = tl.load(a_ptr + dn, mask=dn_ok, other=0.0).to(tl.float32) * 1.4426950408889634
    h = tl.load(h0_ptr + row * D * N + dn, mask=dn_ok, other=0.0).to(tl.float32)

    x_row = x_ptr + row * stride_xb
    dt_row = dt_ptr + row * stride_dtb
    b_row = b_ptr + row * stride_bb
    c_row = c_ptr + row * stride_cb
    y_row = y_ptr + row * T * D
    # step 0's inputs; T >= 1 is guaranteed by the launcher
    x_t = tl.load(x_row + d, mask=d_ok, other=0.0).to(tl.float32)
    dt_t = tl.load(dt_row + d, mask=d_ok, other=0.0).to(tl.float32)
    b_t = tl.load(b_row + n, mask=n_ok, other=0.0).to(tl.float32)
    c_t = tl.load(c_row + n, mask=n_ok, other=0.0).to(tl.float32)
    for t in range(T):
        nxt = t + 1
        more = nxt < T
        x_n = tl.load(x_row + nxt * stride_xt + d, mask=d_ok & more, other=0.0).to(tl.float32)
        dt_n = tl.load(dt_row + nxt * stride_dtt + d, mask=d_ok & more, other=0.0).to(tl.float32)
        b_n = tl.load(b_row + nxt * stride_bt + n, mask=n_ok & more, other=0.0).to(tl.float32)
        c_n = tl.load(c_row + nxt * stride_ct + n, mask=n_ok & more, other=0.0).to(tl.float32)
        h = tl.exp2(dt_t[:, None] * a) * h + (dt_t * x_t)[:, None] * b_t[None, :]
        y = tl.sum(h * c_t[None, :], axis=1)
        tl.store(y_row + t * D + d, y, mask=d_ok)
        x_t, dt_t, b_t, c_t = x_n, dt_n, b_n, c_n
    tl.store(ht_ptr + row * D * N + dn, h, mask=dn_ok)


def _check(name: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(f"selective scan: {name} must have shape {shape}, got {tuple(t.shape)}")


def selective_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    *,
    block_d: int | None = None,
    num_warps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x, dt [Bt, T, Di]; A [Di, N]; B, C [Bt, T, N]; h [Bt, Di, N], any float dtypes, one device
    -> float32 (y [Bt, T, Di], h_T). Arithmetic in float32. The last dimension of x, dt, B, C
    must be contiguous (as the model's projections and splits leave them); other strides are
    free. ``block_d``/``num_warps`` override the measured default launch."""
    bt, t, di = x.shape
    n = A.shape[-1]
    _check("dt", dt, (bt, t, di))
    _check("A", A, (di, n))
    _check("B", B, (bt, t, n))
    _check("C", C, (bt, t, n))
    _check("h", h, (bt, di, n))
    x, dt, B, C = (u if u.stride(-1) == 1 else u.contiguous() for u in (x, dt, B, C))
    A, h0 = A.contiguous(), h.float().contiguous()
    y = torch.empty(bt, t, di, dtype=torch.float32, device=x.device)
    h_t = torch.empty(bt, di, n, dtype=torch.float32, device=x.device)
    if t == 0:
        return y, h_t.copy_(h0)
    block, warps = DEFAULT_CONFIG
    block, warps = block_d or block, num_warps or warps
    grid = (triton.cdiv(di, block), bt)
    _selective_scan_kernel[grid](
        x,
        dt,
        A,
        B,
        C,
        h0,
        y,
        h_t,
        t,
        di,
        n,
        x.stride(0),
        x.stride(1),
        dt.stride(0),
        dt.stride(1),
        B.stride(0),
        B.stride(1),
        C.stride(0),
        C.stride(1),
        BLOCK_D=block,
        BLOCK_N=triton.next_power_of_2(n),
        num_warps=warps,
    )
    return y, h_t
