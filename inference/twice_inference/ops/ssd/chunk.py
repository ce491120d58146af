"""Mamba-2's SSD in chunked PyTorch (any device and dtype, computed in float32) and the
one-token step that decoding uses.
"""

from __future__ import annotations

import torch


def ssd_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same function as ``naive.ssd_naive``, in float32. Within a chunk the output is a masked
    "attention" (C_t . B_s) exp(cum_t - cum_s) over the chunk plus the decayed incoming state; the
    state is carried between chunks sequentially. Decays only ever exponentiate non-positive
    numbers."""
    x, dt, A, B, C, h = (t.float() for t in (x, dt, A, B, C, h))
    ys = []
    for start in range(0, x.shape[1], chunk):
        xc = x[:, start : start + chunk] * dt[:, start : start + chunk, :, None]  # dt-scaled input
        Bc, Cc = B[:, start : start + chunk], C[:, start : start + chunk]
        length = xc.shape[1]
        cum = torch.cumsum(dt[:, start : start + chunk] * A, dim=1)  # [Bt, L, H]
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        diff = cum[:, :, None, :] - cum[:, None, :, :]  # [Bt, L(t), L(s), H]
        decay = torch.where(causal[None, :, :, None], diff, float("-inf")).exp()
        scores = torch.einsum("bthn,bshn->btsh", Cc, Bc) * decay
        y_intra = torch.einsum("btsh,bshp->bthp", scores, xc)
        y_state = torch.einsum("bthn,bhpn->bthp", Cc, h) * cum.exp()[..., None]
        ys.append(y_intra + y_state)
        to_end = (cum[:, -1:, :] - cum).exp()  # [Bt, L, H] decay from s to the chunk end
        h = cum[:, -1, :, None, None].exp() * h + torch.einsum(
            "bshn,bshp->bhpn", Bc * to_end[..., None], xc
        )
    y = torch.cat(ys, dim=1) if ys else x.new_zeros(x.shape)
    return y, h


def ssd_step(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    h: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token: x [Bt, H, P]; dt [Bt, H]; A [H]; B, C [Bt, H, N]; h [Bt, H, P, N] float32 ->
    (y [Bt, H, P] float32, next h)."""
    x, dt, B, C = x.float(), dt.float(), B.float(), C.float()
    h = torch.exp(dt * A)[..., None, None] * h + (dt[..., None] * x)[..., None] * B[:, :, None]
    return (h * C[:, :, None, :]).sum(-1), h
