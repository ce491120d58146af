"""The graph-parity benchmark's CPU-checkable parts: its step comparison finds the first argmax
flip and the top-2 gaps there, and its teacher-forced decoding reproduces the engine's greedy
logits (on the CPU both decoders step eagerly, so they must agree exactly)."""

from __future__ import annotations

import torch
from tiny_configs import VOCAB

from twice_inference.bench.graph_parity import (
    decode_logits,
    first_divergence,
    greedy_feed,
    step_diffs,
    top2_gap,
)
from twice_inference.engine.generate import greedy_generate, left_pad
from twice_inference.models.registry import build_model


def test_step_diffs_names_the_first_flip_and_its_gaps() -> None:
    a = [torch.tensor([[1.0, 0.0, 0.5]]), torch.tensor([[0.30, 0.25, 0.0]])]
    b = [torch.tensor([[1.0, 0.0, 0.5]]), torch.tensor([[0.24, 0.26, 0.0]])]
    d = step_diffs(a, b)
    assert d["argmax_flips"] == [0, 1]
    assert d["max_abs_diff"][0] == 0.0
    assert abs(d["max_abs_diff"][1] - 0.06) < 1e-6
    flip = d["first_flip"]
    assert (flip["step"], flip["row"]) == (2, 0)
    assert abs(flip["top2_gap_reference"] - 0.05) < 1e-6
    assert abs(flip["top2_gap_other"] - 0.02) < 1e-6
    assert step_diffs(a, a)["first_flip"] is None


def test_top2_gap_and_first_divergence() -> None:
    assert torch.allclose(
        top2_gap(torch.tensor([[3.0, 1.0, 2.5], [0.0, 0.0, 0.0]])), torch.tensor([0.5, 0.0])
    )
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 4, 3]) == 1
    assert first_divergence([1, 2], [1, 2, 3]) == 2


def test_teacher_forced_logits_follow_the_engines_greedy_tokens() -> None:
    torch.manual_seed(0)
    config = dict(vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4)
    model = build_model("transformer", config).init_random(seed=1).eval()
    prompts = [[5, 6, 7, 8, 9], [3, 4]]
    ids, mask = left_pad(prompts, 0, torch.device("cpu"))
    with torch.inference_mode():
        feed = greedy_feed(model, ids, mask, 6)
        logits = decode_logits(model, ids, mask, False, feed)
        again = decode_logits(model, ids, mask, True, feed)  # CPU: no graph, the same steps
    assert len(feed) == len(logits) == 6
    expected = greedy_generate(
        model, prompts, max_new_tokens=7, stop_id=None, batch_size=2, pad_id=0
    )
    for row, generation in enumerate(expected.generations):
        tokens = [int(feed[0][row])] + [int(x[row].argmax()) for x in logits]
        assert tokens == generation.tokens
    assert step_diffs(logits, again)["max_abs_diff"] == [0.0] * 6


def test_repeat_diff_is_zero_only_for_a_deterministic_call() -> None:
    from twice_inference.bench.graph_parity import repeat_diff

    x = torch.randn(5)
    assert repeat_diff(lambda a: a * 2, x) == 0.0
    calls = iter(range(100))
    assert repeat_diff(lambda a: a + next(calls), x, times=3) == 3.0
