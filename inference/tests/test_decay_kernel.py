"""The decayed Taylor kernel (``kernels.decay_triton``) on the CPU under the Triton interpreter:
outputs and the decode state against the float64 reference (itself checked against the loop in
``test_decay.py``), strided inputs as the layer passes them, the recurrent form continuing from
the kernel's state, the op's dispatch (padding stays on PyTorch) and input validation. The module
is marked ``triton_interpreter``: conftest.py runs it in a process of its own."""

from __future__ import annotations

import pytest
import torch
from tiny_configs import KERNEL_HYBRID, VOCAB

from twice_inference.kernels import decay_triton
from twice_inference.kernels.decay_triton import decayed_taylor_prefill
from twice_inference.models import based
from twice_inference.models.decay import log_decay
from twice_inference.models.layers import rel_error
from twice_inference.ops import kernel_mode
from twice_inference.ops.linear_attention import decayed
from twice_inference.ops.linear_attention.naive import decayed_linear_attention_naive

pytestmark = pytest.mark.triton_interpreter

# bf16 inputs to the tensor-core products; the undecayed kernels' bar (test_kernel_dispatch.py)
BF16_TOL = 2e-2
EPS = 1e-12
DECAYED_KERNEL_MODEL = {
    **KERNEL_HYBRID,
    "fixed_decay": True,
    "decay_const": -3,
    "use_decay_proj": True,
}


def _inputs(b: int, h: int, t: int, dv: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(b, h, t, 16, generator=g).mul(0.5).bfloat16() for _ in range(2))
    v = torch.randn(b, h, t, dv, generator=g).bfloat16()
    dt = torch.randn(b, h, t, generator=g).bfloat16()
    return q, k, v, dt


@pytest.mark.parametrize(
    ("t", "dv", "with_scale"),
    # one token; inside one chunk; a whole chunk; across chunks with a ragged tail and two value
    # slices; several chunks without the scale (a decay without the projection)
    [(1, 32, True), (5, 32, True), (64, 32, True), (150, 64, True), (130, 32, False)],
)
def test_kernel_matches_float64_reference(t: int, dv: int, with_scale: bool) -> None:
    q, k, v, dt = _inputs(2, 3, t, dv, seed=t)
    lg = log_decay(3, -3)
    scale = dt if with_scale else None
    y, s, z = decayed_taylor_prefill(q, k, v, lg, scale)
    want_y, want_s, want_z = decayed_linear_attention_naive(q, k, v, lg, scale, None, EPS)
    assert y.dtype == torch.bfloat16 and y.shape == (2, 3, t, dv)
    assert rel_error(y.double(), want_y) < BF16_TOL
    assert rel_error(s.double(), want_s) < BF16_TOL
    assert rel_error(z.double(), want_z) < 1e-5  # z sums exact bf16 products in float32


def test_strided_inputs_as_the_layer_passes_them() -> None:
    """q, k, v, dt as views of [B, T, H*D] projections; y comes back as a view of [B, T, H, Dv]."""
    b, h, t, dv = 2, 2, 70, 32
    g = torch.Generator().manual_seed(0)
    proj = torch.randn(b, t, h * (16 + 16 + dv + 1), generator=g).mul(0.5).bfloat16()
    q, k, v, dt = proj.split([h * 16, h * 16, h * dv, h], dim=-1)
    q, k, v = (x.view(b, t, h, -1).transpose(1, 2) for x in (q, k, v))
    dt = dt.transpose(1, 2)
    lg = log_decay(h, -3)
    y, s, z = decayed_taylor_prefill(q, k, v, lg, dt)
    dense = decayed_taylor_prefill(*(x.contiguous() for x in (q, k, v)), lg, dt.contiguous())
    assert torch.equal(y, dense[0]) and torch.equal(s, dense[1]) and torch.equal(z, dense[2])
    assert y.transpose(1, 2).is_contiguous()  # the output projection reads it without a copy
    want_y, _, _ = decayed_linear_attention_naive(q, k, v, lg, dt, None, EPS)
    assert rel_error(y.double(), want_y) < BF16_TOL


def test_recurrent_step_continues_from_the_kernel_state() -> None:
    """The state after T - 1 tokens, advanced by the layer's decode step, gives the kernel's output
    at token T."""
    torch.manual_seed(0)
    model = based.build(DECAYED_KERNEL_MODEL).init_random(seed=2, std=0.2).eval().bfloat16()
    layer = next(m for m in model.modules() if type(m).__name__ == "DecayedLinearAttention")
    x = torch.randn(2, 71, model.config.d_model).mul(0.5).bfloat16()
    with torch.no_grad(), kernel_mode.use_taylor_kernel_mode("interpreter"):
        full, _ = layer.prefill(x, None, None)
        _, state = layer.prefill(x[:, :70], None, None)
        stepped, _ = layer.step(x[:, 70], None, state)
    assert rel_error(stepped.double(), full[:, 70].double()) < BF16_TOL


def test_model_kernel_path_matches_the_pytorch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = decay_triton.decayed_taylor_prefill

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(decay_triton, "decayed_taylor_prefill", counted)
    model = based.build(DECAYED_KERNEL_MODEL).init_random(seed=1, std=0.2).eval().bfloat16()
    ids = torch.randint(1, VOCAB, (2, 90))
    with torch.no_grad():
        with kernel_mode.use_taylor_kernel_mode("off"):
            want, want_state = model.prefill(ids, torch.ones_like(ids))
        with kernel_mode.use_taylor_kernel_mode("interpreter"), decayed.without_decay_kernel():
            baseline, _ = model.prefill(ids, torch.ones_like(ids))  # the benchmark's "before"
        # no decayed kernel; the other kernels (short conv) still ran, hence not bit-equal
        assert calls["n"] == 0 and rel_error(baseline.float(), want.float()) < BF16_TOL
        with kernel_mode.use_taylor_kernel_mode("interpreter"):
            got, got_state = model.prefill(ids, torch.ones_like(ids))
    assert calls["n"] == len(model.config.linear_attn_layers)
    assert rel_error(got.float(), want.float()) < BF16_TOL
    for layer in model.config.linear_attn_layers:
        mine, theirs = got_state.layers[layer], want_state.layers[layer]
        assert rel_error(mine.s, theirs.s) < BF16_TOL and rel_error(mine.z, theirs.z) < BF16_TOL


def test_padding_stays_on_the_pytorch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the kernel has no mask: padded inputs must not reach it")

    monkeypatch.setattr(decay_triton, "decayed_taylor_prefill", refuse)
    q, k, v, dt = _inputs(2, 2, 40, 32, seed=1)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, :5] = False
    lg = log_decay(2, -3)
    with kernel_mode.use_taylor_kernel_mode("interpreter"):
        y, s, z = decayed.decayed_taylor_attention(q, k, v, lg, dt, mask, EPS)
    want_y, want_s, want_z = decayed_linear_attention_naive(q, k, v, lg, dt, mask, EPS)
    assert y.dtype == torch.float32
    assert rel_error(y[1, :, 5:].double(), want_y[1, :, 5:]) < 1e-5
    assert rel_error(s.double(), want_s) < 1e-5 and rel_error(z.double(), want_z) < 1e-5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q": lambda x: x.float()}, "q must be bfloat16"),
        ({"v": lambda x: x[..., :24]}, "value dim 24"),
        ({"k": lambda x: x[:, :, :-1]}, "k must have shape"),
        ({"dt": lambda x: x[:, :1]}, "dt must have shape"),
        ({"lg": lambda x: x[:1]}, "log_gamma must have shape"),
    ],
)
def test_bad_inputs_are_named(change: dict, message: str) -> None:
    q, k, v, dt = _inputs(1, 2, 8, 32, seed=2)
    args = {"q": q, "k": k, "v": v, "lg": log_decay(2, -3), "dt": dt}
    for name, fn in change.items():
        args[name] = fn(args[name])
    with pytest.raises(ValueError, match=message):
        decayed_taylor_prefill(args["q"], args["k"], args["v"], args["lg"], args["dt"])
