"""GPU checks and timings of the decayed Taylor kernel (``kernels.decay_triton``, based-360m-30b's
linear attention), run by ``bench.kernels`` (every suite that checks; ``--suite decay`` alone):

- at the model's shapes (B = 8, H = 16, d = 16, Dv = 64) and the benchmarked lengths (8192,
  16384), y and the decode state (s, z) against the float64 quadratic reference, batch rows 0
  and B - 1, head by head;
- ragged lengths (1, 17, 1000, 3000 tokens), two value slices (Dv = 128), no output scale;
- the recurrent form: the 360M layer's state after T - 1 tokens, advanced by its decode step,
  gives the kernel's output at token T;
- padded inputs through the op stay on the exact PyTorch path;
- the op at B = 8 with the kernel and with the PyTorch path it replaces, timed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..kernels.decay_triton import decayed_taylor_prefill
from ..models.decay import log_decay
from ..ops.linear_attention.naive import decayed_linear_attention_naive

HEADS, D_FEATURE, D_VALUE = 16, 16, 64
MODEL_LENGTHS = (8192, 16384)
MAX_REL_ERR = 1e-2
DECAY_CONST = -3.0  # based-360m-30b's


def _rel(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref).norm() / ref.norm())


def _inputs(b: int, n: int, dv: int, seed: int) -> tuple[torch.Tensor, ...]:
    """q, k at the scale a 360M layer's projections give (std ~0.5), v and dt ~N(0, 1), bf16."""
    g = torch.Generator(device="cuda").manual_seed(seed)

    def draw(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, device="cuda", generator=g) * scale).bfloat16()

    return (
        draw(b, HEADS, n, D_FEATURE, scale=0.5),
        draw(b, HEADS, n, D_FEATURE, scale=0.5),
        draw(b, HEADS, n, dv),
        draw(b, HEADS, n),
    )


def _errors(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dt: torch.Tensor | None,
    rows: list[int],
) -> dict[str, float]:
    """The kernel's y, s, z against the float64 reference on batch ``rows``, one head at a time
    (the reference is quadratic: [T, T] float64 per head)."""
    lg = log_decay(HEADS, DECAY_CONST).cuda()
    y, s, z = decayed_taylor_prefill(q, k, v, lg, dt)
    sq = {"y": [0.0, 0.0], "s": [0.0, 0.0], "z": [0.0, 0.0]}  # error^2, reference^2
    for b in rows:
        for h in range(HEADS):
            one = (slice(b, b + 1), slice(h, h + 1))
            want = decayed_linear_attention_naive(
                q[one], k[one], v[one], lg[h : h + 1], None if dt is None else dt[one]
            )
            for name, got, ref in zip("ysz", (y[one], s[one], z[one]), want, strict=True):
                sq[name][0] += float((got.double() - ref).square().sum())
                sq[name][1] += float(ref.square().sum())
            del want
    return {name: (e / r) ** 0.5 for name, (e, r) in sq.items()}


def _recurrent_error() -> float:
    """The 360M layer (random weights, bf16): prefill of T - 1 tokens + one decode step vs the
    prefill's output at token T."""
    from ..models.based import BasedConfig, LinearAttention
    from ..models.decay import make_decayed
    from .model_common import family_configs

    _, _, config = next(family_configs(["based"], None))
    parsed = BasedConfig.model_validate(config)
    torch.manual_seed(0)
    with torch.device("cuda"):
        layer = make_decayed(LinearAttention)(parsed)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=parsed.d_model**-0.5)
    layer = layer.bfloat16().eval()
    x = torch.randn(2, 777, parsed.d_model, device="cuda").bfloat16()
    with torch.inference_mode():
        full, _ = layer.prefill(x, None, None)
        _, state = layer.prefill(x[:, :-1], None, None)
        stepped, _ = layer.step(x[:, -1], None, state)
    return _rel(stepped, full[:, -1].double())


def _padded_error() -> tuple[float, bool]:
    """Left-padded rows through the op: (error against the PyTorch form, kernel was called)."""
    from ..kernels import decay_triton
    from ..ops.kernel_mode import use_taylor_kernel_mode
    from ..ops.linear_attention import decayed

    q, k, v, dt = _inputs(2, 500, D_VALUE, seed=5)
    mask = torch.ones(2, 500, dtype=torch.bool, device="cuda")
    mask[1, :100] = False
    lg = log_decay(HEADS, DECAY_CONST).cuda()
    called = []
    real = decay_triton.decayed_taylor_prefill
    decay_triton.decayed_taylor_prefill = lambda *a, **kw: called.append(1) or real(*a, **kw)
    try:
        with use_taylor_kernel_mode("auto"):
            y, _, _ = decayed.decayed_taylor_attention(q, k, v, lg, dt, mask, 1e-12)
    finally:
        decay_triton.decayed_taylor_prefill = real
    want, _, _ = decayed_linear_attention_naive(q[1:], k[1:], v[1:], lg, dt[1:], mask[1:], 1e-12)
    return _rel(y[1, :, 100:], want[0, :, 100:]), bool(called)


def decay_checks() -> list[str]:
    """Every check above; prints each figure, returns the failures."""
    failures = []
    cases: list[tuple[int, int, int, bool]] = [(8, n, D_VALUE, True) for n in MODEL_LENGTHS]
    cases += [(2, 1, 64, True), (1, 17, 128, True), (3, 1000, 64, False), (2, 3000, 128, True)]
    for b, n, dv, with_scale in cases:
        q, k, v, dt = _inputs(b, n, dv, seed=n)
        errs = _errors(q, k, v, dt if with_scale else None, [0, b - 1] if b > 1 else [0])
        worst = max(errs.values())
        print(
            f"  decayed kernel B={b} N={n} Dv={dv} scale={with_scale}: rel err "
            + ", ".join(f"{k} {e:.2e}" for k, e in errs.items()),
            flush=True,
        )
        if not worst < MAX_REL_ERR:
            failures.append(f"decayed B={b} N={n} Dv={dv}: {errs}")
        del q, k, v, dt
        torch.cuda.empty_cache()
    err = _recurrent_error()
    print(f"  decayed 360M layer, prefill + 1 step vs prefill at token 777: {err:.2e}", flush=True)
    if not err < MAX_REL_ERR:
        failures.append(f"decayed recurrent step: {err:.2e}")
    err, called = _padded_error()
    print(f"  decayed op, padded rows: rel err {err:.2e}, kernel called: {called}", flush=True)
    if called or not err < 1e-5:
        failures.append(f"decayed padded op: {err:.2e}, kernel called {called}")
    return failures


def decay_timings(time_ms: Callable[[Callable[[], Any]], float]) -> dict[str, dict[str, float]]:
    """One layer's decayed linear attention at B = 8 (H = 16, Dv = 64, bf16 in): the kernel, and
    the op's PyTorch form (float32 features, what the 360M model ran before the kernel)."""
    from ..ops.kernel_mode import use_taylor_kernel_mode
    from ..ops.linear_attention.decayed import decayed_taylor_attention

    lg = log_decay(HEADS, DECAY_CONST).cuda()
    table: dict[str, dict[str, float]] = {}
    for n in MODEL_LENGTHS:
        args = (*_inputs(8, n, D_VALUE, seed=1), None, 1e-12)
        for mode in ("auto", "off"):
            with torch.inference_mode(), use_taylor_kernel_mode(mode):
                ms = time_ms(lambda a=args: decayed_taylor_attention(*a[:3], lg, *a[3:]))
            name = "Triton kernel" if mode == "auto" else "PyTorch chunked (before)"
            table.setdefault(name, {})[f"b8_n{n}"] = ms
            print(f"  decayed op B=8 N={n} {name}: {ms:.2f} ms", flush=True)
        del args
        torch.cuda.empty_cache()
    return table
