"""JRT-RNN's released padding ("released-v1", issue 15 defect 4) against an independent loop port
of the paper's prefix linear attention on a padded toy: raw k and k_e zeroed at pads before the
Taylor map, v and v_e unmasked, encoder = the first min(M, T) columns."""

from __future__ import annotations

import torch
from tiny_configs import HYBRID, VOCAB

from twice_inference.models import jrt_rnn
from twice_inference.models.jrt_released_padding import released_prefix_linear_attention
from twice_inference.models.layers import rel_error
from twice_inference.ops.feature_map import taylor_feature_map
from twice_inference.ops.prefix_linear_attention.chunk import (
    encoder_mask,
    prefix_linear_attention_torch,
)

M = 8


def released_port(q, k, v, k_enc, v_enc, mask, m, eps):
    """Loop form, float64: every column is a token; pads only lose their raw keys."""
    q, k, v, k_enc, v_enc = (x.double() for x in (q, k, v, k_enc, v_enc))
    b, h, t, _ = q.shape
    if t <= m:
        keep = mask[:, None, :, None].double()
        k, k_enc = k * keep, k_enc * keep
    phi_q, phi_k, phi_ke = (taylor_feature_map(x) for x in (q, k, k_enc))
    enc_s = sum(phi_ke[:, :, j, :, None] * v_enc[:, :, j, None, :] for j in range(min(m, t)))
    enc_z = sum(phi_ke[:, :, j] for j in range(min(m, t)))
    s, z, out = enc_s, enc_z, []
    for i in range(t):
        s = s + phi_k[:, :, i, :, None] * v[:, :, i, None, :]
        z = z + phi_k[:, :, i]
        num = (phi_q[:, :, i, :, None] * s).sum(-2)
        out.append(num / ((phi_q[:, :, i] * z).sum(-1)[..., None] + eps))
    return torch.stack(out, dim=2), s, z


def toy(pads: int):
    gen = torch.Generator().manual_seed(pads)
    q, k, k_enc = (torch.randn(2, 2, M, 4, generator=gen) * 0.5 for _ in range(3))
    v, v_enc = (torch.randn(2, 2, M, 6, generator=gen) for _ in range(2))
    mask = torch.ones(2, M, dtype=torch.bool)
    mask[0, :pads] = False
    return q, k, v, k_enc, v_enc, mask


def test_released_matches_port_on_padded_toy() -> None:
    q, k, v, k_enc, v_enc, mask = toy(pads=5)
    y, state = released_prefix_linear_attention(q, k, v, k_enc, v_enc, mask, M, 1e-12)
    y_port, s_port, z_port = released_port(q, k, v, k_enc, v_enc, mask, M, 1e-12)
    assert rel_error(y.double(), y_port) < 1e-6
    assert rel_error(state.s.double(), s_port) < 1e-6 and rel_error(state.z.double(), z_port) < 1e-6


def test_released_differs_from_ours_with_pads_and_agrees_without() -> None:
    q, k, v, k_enc, v_enc, mask = toy(pads=5)
    ours = prefix_linear_attention_torch(q, k, v, k_enc, v_enc, mask, encoder_mask(mask, M), 1e-12)
    released, _ = released_prefix_linear_attention(q, k, v, k_enc, v_enc, mask, M, 1e-12)
    real = mask[0]
    assert rel_error(released[0, :, real], ours[0, :, real]) > 0.1  # the pads leak
    q, k, v, k_enc, v_enc, mask = toy(pads=0)
    ours = prefix_linear_attention_torch(q, k, v, k_enc, v_enc, mask, encoder_mask(mask, M), 1e-12)
    released, _ = released_prefix_linear_attention(q, k, v, k_enc, v_enc, mask, M, 1e-12)
    assert rel_error(released, ours) < 1e-6


def test_model_released_mode_prefill_then_step() -> None:
    model = jrt_rnn.build({**HYBRID, "encoder_length": M}).init_random(seed=1, std=0.2).eval()
    ids = torch.randint(1, VOCAB, (1, 5))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ours, _ = model.prefill(ids, mask)
        model.set_pad_semantics("released-v1", pad_id=3)
        released, state = model.prefill(ids, mask)
        logits, _ = model.step(ids[:, -1], state)
    assert rel_error(released, ours) > 1e-3  # three encoder pads leak into the state
    assert torch.isfinite(logits).all()
