"""The Triton selective scan (Mamba-1) against the float64 reference under the Triton
interpreter, its dispatch in ops.selective_scan, and the SSM dispatch rules (fla's kernels never
on CPU). fla's SSD and GLA kernels themselves need a GPU: ``bench.scans`` checks them there
against the same references.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from twice_inference.kernels import selective_scan_triton
from twice_inference.models import mamba
from twice_inference.models.layers import rel_error
from twice_inference.ops import gla, kernel_mode, selective_scan, ssd
from twice_inference.ops.selective_scan import selective_scan_naive

pytestmark = pytest.mark.triton_interpreter

# float32 arithmetic in both; the kernel uses exp2 with a folded log2(e), a few ulps apart
TOL = 1e-5


def _scan_inputs(b: int, t: int, d: int, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, d, generator=g)
    dt = F.softplus(torch.randn(b, t, d, generator=g)) * 2  # strong decay: errors would compound
    A = -torch.rand(d, n, generator=g) * 4
    bc = torch.randn(b, t, 2 * n, generator=g)  # B, C as the model's split leaves them: strided
    B, C = bc.split([n, n], dim=-1)
    h0 = torch.randn(b, d, n, generator=g)
    return x, dt, A, B, C, h0


@pytest.mark.parametrize(
    "b,t,d,n,block",
    [(2, 37, 40, 16, 32), (1, 1, 8, 4, 32), (3, 20, 64, 5, 16), (2, 9, 100, 16, 64)],
)
def test_triton_scan_matches_the_float64_reference(b: int, t: int, d: int, n: int, block: int):
    x, dt, A, B, C, h0 = _scan_inputs(b, t, d, n, seed=t + d)
    y_ref, h_ref = selective_scan_naive(x, dt, A, B, C, h0)
    y, h = selective_scan_triton.selective_scan(x, dt, A, B, C, h0, block_d=block, num_warps=1)
    assert y.dtype == torch.float32 and h.dtype == torch.float32
    assert rel_error(y, y_ref.float()) < TOL and rel_error(h, h_ref.float()) < TOL


def test_triton_scan_keeps_the_state_through_pads_and_reads_bf16():
    x, dt, A, B, C, h0 = _scan_inputs(2, 12, 32, 16, seed=5)
    dt[1, :4] = 0.0  # left pads, as the model masks them: exp(0) = 1, no input
    xb = x.to(torch.bfloat16)
    y_ref, h_ref = selective_scan_naive(xb, dt, A, B, C, h0)
    y, h = selective_scan_triton.selective_scan(xb, dt, A, B, C, h0)
    assert rel_error(y, y_ref.float()) < TOL and rel_error(h, h_ref.float()) < TOL
    alone_ref, _ = selective_scan_naive(x[1:, 4:], dt[1:, 4:], A, B[1:, 4:], C[1:, 4:], h0[1:])
    alone, _ = selective_scan_triton.selective_scan(
        x[1:, 4:], dt[1:, 4:], A, B[1:, 4:], C[1:, 4:], h0[1:]
    )
    assert rel_error(alone, alone_ref.float()) < TOL


def test_triton_scan_rejects_mismatched_shapes_by_name():
    x, dt, A, B, C, h0 = _scan_inputs(1, 4, 8, 4, seed=1)
    with pytest.raises(ValueError, match="C must have shape"):
        selective_scan_triton.selective_scan(x, dt, A, B, C[:, :3], h0)


def test_dispatch_takes_the_kernel_where_it_may(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = selective_scan_triton.selective_scan

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(selective_scan_triton, "selective_scan", counted)
    x, dt, A, B, C, h0 = _scan_inputs(2, 10, 16, 8, seed=3)
    y_ref, h_ref = selective_scan_naive(x, dt, A, B, C, h0)
    with kernel_mode.use_taylor_kernel_mode("off"):
        selective_scan.selective_scan(x, dt, A, B, C, h0)
    assert calls == []
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        y, h = selective_scan.selective_scan(x, dt, A, B, C, h0)
        assert calls == [1]
        x.requires_grad_(True)  # training stays on PyTorch
        selective_scan.selective_scan(x, dt, A, B, C, h0)
        assert calls == [1]
    assert rel_error(y, y_ref.float()) < TOL and rel_error(h, h_ref.float()) < TOL


def test_fla_kernels_are_never_tried_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The interpreter mode runs our Triton kernels on CPU tensors, never fla's (CUDA-only)."""
    import fla.ops.gla
    import fla.ops.simple_gla

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("fla kernel called on CPU")

    monkeypatch.setattr(fla.ops.simple_gla, "chunk_simple_gla", refuse)
    monkeypatch.setattr(fla.ops.gla, "chunk_gla", refuse)
    g = torch.Generator().manual_seed(7)
    x, B, C = (torch.randn(1, 6, 2, 4, generator=g) for _ in range(3))
    dt = F.softplus(torch.randn(1, 6, 2, generator=g))
    A, h0 = -torch.rand(2, generator=g), torch.zeros(1, 2, 4, 4)
    q, k, v = (torch.randn(1, 6, 2, 4, generator=g) for _ in range(3))
    gate = F.logsigmoid(torch.randn(1, 6, 2, 4, generator=g))
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        y, _ = ssd.ssd(x, dt, A, B, C, h0, chunk=4)
        o, _ = gla.gla(q, k, v, gate, torch.zeros(1, 2, 4, 4))
    assert rel_error(y, ssd.ssd_naive(x, dt, A, B, C, h0)[0].float()) < TOL
    assert rel_error(o, gla.gla_naive(q, k, v, gate, torch.zeros(1, 2, 4, 4))[0].float()) < TOL


def test_tiny_mamba_runs_the_kernel_and_matches_the_reference_path() -> None:
    torch.manual_seed(0)
    model = mamba.build(
        {"d_model": 32, "n_layer": 2, "vocab_size": 64, "ssm_cfg": {"d_state": 8}}
    ).eval()
    ids = torch.randint(0, 64, (2, 11))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    with torch.no_grad():
        with kernel_mode.use_taylor_kernel_mode("interpreter"):
            fast = model(ids, mask)
            logits, state = model.prefill(ids, mask)
        for m in model.modules():
            if hasattr(m, "use_chunked_scan"):
                m.use_chunked_scan = False
        slow = model(ids, mask)
        slow_logits, slow_state = model.prefill(ids, mask)
    assert rel_error(fast, slow) < 1e-5 and rel_error(logits, slow_logits) < 1e-5
    assert rel_error(state.ssm, slow_state.ssm) < 1e-5
