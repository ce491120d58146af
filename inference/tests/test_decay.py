"""Based's fixed decay with a decay projection (based-360m-30b's training config; issue 15,
defect 5): the layer against a float64 loop written from the formula, parallel vs recurrent on a
whole model, and the options read from a hazy config.json."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_configs import HYBRID, VOCAB

from twice_inference.models import based
from twice_inference.models.checkpoint import convert_hazy
from twice_inference.models.decay import (
    checkpoint_decay_options,
    decay_options,
    log_decay,
)
from twice_inference.models.layers import rel_error
from twice_inference.ops.feature_map import taylor_feature_map
from twice_inference.ops.linear_attention.decayed import decayed_linear_attention
from twice_inference.ops.linear_attention.naive import decayed_linear_attention_naive

DECAYED = {**HYBRID, "fixed_decay": True, "decay_const": -3, "use_decay_proj": True}


def reference_float64(q, k, v, dt, decay_const, eps):
    """y[b,h,i] = dt[b,h,i] sum_{j<=i} g_h^(i-j) (phi q_i . phi k_j) v_j / (phi q_i . sum phi k_j)."""
    q, k, v, dt = (x.double() for x in (q, k, v, dt))
    phi_q, phi_k = taylor_feature_map(q), taylor_feature_map(k)
    b, h, t, _ = q.shape
    out = torch.zeros(b, h, t, v.shape[-1], dtype=torch.float64)
    for head in range(h):
        g = 1 - 2.0 ** (decay_const - head)
        for i in range(t):
            num = torch.zeros(b, v.shape[-1], dtype=torch.float64)
            den = torch.zeros(b, dtype=torch.float64)
            for j in range(i + 1):
                score = (phi_q[:, head, i] * phi_k[:, head, j]).sum(-1)
                num += (g ** (i - j)) * score[:, None] * v[:, head, j]
                den += score
            out[:, head, i] = dt[:, head, i, None] * num / (den[:, None] + eps)
    return out


@pytest.mark.parametrize(
    ("t", "chunk"),
    # within one chunk, across a border (left-padded to whole chunks), and many chunks, whole
    # and padded, where the carry between chunks decays over several of them
    [(5, 128), (70, 128), (130, 128), (70, 16), (64, 16)],
)
def test_decayed_attention_matches_float64_loop(t: int, chunk: int) -> None:
    gen = torch.Generator().manual_seed(t)
    q, k = (torch.randn(2, 3, t, 4, generator=gen) * 0.5 for _ in range(2))
    v = torch.randn(2, 3, t, 5, generator=gen)
    dt = torch.randn(2, 3, t, generator=gen)
    phi_q, phi_k = taylor_feature_map(q), taylor_feature_map(k)
    y, s, z = decayed_linear_attention(phi_q, phi_k, v, log_decay(3, -3), dt, 1e-12, chunk)
    assert rel_error(y.double(), reference_float64(q, k, v, dt, -3, 1e-12)) < 1e-5
    # the state decoding continues from: s = sum_j gamma^(T-1-j) phi(k_j)^T v_j, z = sum_j phi(k_j)
    gamma = log_decay(3, -3).double().exp()[None, :, None]
    weights = gamma ** torch.arange(t - 1, -1, -1, dtype=torch.float64)  # [1, H, T]
    phi_k64 = taylor_feature_map(k.double())
    want_s = torch.einsum("bht,bhtf,bhtd->bhfd", weights.expand(2, 3, t), phi_k64, v.double())
    assert rel_error(s.double(), want_s) < 1e-5
    assert rel_error(z.double(), phi_k64.sum(dim=2)) < 1e-5


def test_quadratic_reference_is_the_loop() -> None:
    """The float64 reference the kernel is tested against (test_decay_kernel.py), vectorised."""
    gen = torch.Generator().manual_seed(3)
    q, k = (torch.randn(1, 3, 20, 16, generator=gen, dtype=torch.float64) * 0.5 for _ in range(2))
    v = torch.randn(1, 3, 20, 8, generator=gen, dtype=torch.float64)
    dt = torch.randn(1, 3, 20, generator=gen, dtype=torch.float64)
    y, s, z = decayed_linear_attention_naive(q, k, v, log_decay(3, -3), dt, None, 1e-12)
    # gamma from log_decay is float32: 1e-8 relative, not float64 round-off
    assert rel_error(y, reference_float64(q, k, v, dt, -3, 1e-12)) < 1e-6
    phi_q, phi_k = taylor_feature_map(q), taylor_feature_map(k)
    want = decayed_linear_attention(phi_q, phi_k, v, log_decay(3, -3), dt, 1e-12, 8)
    assert rel_error(s, want[1].double()) < 1e-6 and rel_error(z, want[2].double()) < 1e-6


def test_decay_constants() -> None:
    # gamma_h = 1 - 2^(-3 - h): 0.875, 0.9375, ...
    assert torch.allclose(log_decay(2, -3).exp(), torch.tensor([0.875, 0.9375]))
    assert math.isclose(float(log_decay(1, -3)[0]), math.log(0.875), rel_tol=1e-6)


def test_model_parallel_matches_prefill_and_step() -> None:
    model = based.build(DECAYED).init_random(seed=1, std=0.2).eval()
    assert any(name.endswith("decay_proj.weight") for name, _ in model.named_parameters())
    ids = torch.randint(1, VOCAB, (2, 80))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    with torch.no_grad():
        full = model(ids, mask)
        logits, state = model.prefill(ids[:, :70], mask[:, :70])
        errors = [rel_error(logits, full[:, 69])]
        for t in range(70, 80):
            logits, state = model.step(ids[:, t], state)
            errors.append(rel_error(logits, full[:, t]))
    assert max(errors) < 1e-4, errors


def test_decay_changes_the_output() -> None:
    plain = based.build(HYBRID).init_random(seed=1, std=0.2).eval()
    decayed = based.build({**HYBRID, "fixed_decay": True}).init_random(seed=1, std=0.2).eval()
    ids = torch.randint(1, VOCAB, (1, 40))
    with torch.no_grad():
        assert rel_error(decayed(ids, None), plain(ids, None)) > 1e-3


def test_options_come_from_a_hazy_config_json(tmp_path) -> None:
    config = {"fixed_decay": True, "decay_const": -3, "alt_mixer": {"use_decay_proj": True}}
    assert decay_options(config) == {
        "fixed_decay": True,
        "decay_const": -3.0,
        "use_decay_proj": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert checkpoint_decay_options(tmp_path)["use_decay_proj"] is True
    assert checkpoint_decay_options(tmp_path / "absent") == {}


def test_projection_without_decay_is_refused() -> None:
    with pytest.raises(ValueError, match="fixed_decay"):
        based.build({**HYBRID, "use_decay_proj": True})


def test_checkpoint_decay_buffer_is_dropped_on_conversion() -> None:
    converted = convert_hazy({"transformer.decay.decay": torch.zeros(16)})
    assert converted == {}
