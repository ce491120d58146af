"""Batched greedy decoding and batched prompt NLL agree exactly with the naive one-prompt-at-a-time
references, do not depend on batch composition, and honour stop tokens and max_new_tokens."""

from __future__ import annotations

import random

import pytest
import torch

from twice_inference.engine.generate import (
    greedy_generate,
    left_pad,
    longest_first_batches,
    prompt_nll,
)
from twice_inference.engine.naive import naive_greedy_generate, naive_prompt_nll

PAD = 0


def _prompts(vocab_size: int, lengths: list[int], seed: int = 1) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(2, vocab_size) for _ in range(n)] for n in lengths]


def test_test_model_parallel_and_recurrent_forms_agree(tiny_model) -> None:
    prompts = _prompts(tiny_model.vocab_size, [7, 3, 5])
    ids, mask = left_pad(prompts, PAD, torch.device("cpu"))
    full = tiny_model.forward(ids, mask)
    last, state = tiny_model.prefill(ids, mask)
    torch.testing.assert_close(last, full[:, -1])
    extended = torch.cat([ids, last.argmax(-1, keepdim=True)], dim=1)
    stepped, _ = tiny_model.step(extended[:, -1], state)
    whole = tiny_model.forward(extended, torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1))
    torch.testing.assert_close(stepped, whole[:, -1])


def test_left_pad_right_aligns_with_mask() -> None:
    ids, mask = left_pad([[5, 6, 7], [9]], pad_id=3, device=torch.device("cpu"))
    assert ids.tolist() == [[5, 6, 7], [3, 3, 9]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batches_are_longest_first() -> None:
    assert list(longest_first_batches([2, 5, 3, 5, 1], 2)) == [[1, 3], [2, 0], [4]]


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_greedy_equals_naive(tiny_model, batch_size: int) -> None:
    prompts = _prompts(tiny_model.vocab_size, [9, 1, 4, 12, 4, 6, 2])
    result = greedy_generate(
        tiny_model, prompts, max_new_tokens=10, stop_id=None, batch_size=batch_size, pad_id=PAD
    )
    reference = naive_greedy_generate(tiny_model, prompts, max_new_tokens=10, stop_id=None)
    assert [g.tokens for g in result.generations] == reference
    assert [g.prompt_tokens for g in result.generations] == [len(p) for p in prompts]
    assert len({tuple(tokens) for tokens in reference}) > 1, "model too degenerate to test anything"
    assert result.timing.batches == -(-len(prompts) // batch_size)
    assert result.timing.prefill_tokens == sum(len(p) for p in prompts)
    assert result.timing.prefill_seconds > 0 and result.timing.decode_seconds > 0


def test_generation_independent_of_batch_composition(tiny_model) -> None:
    short = _prompts(tiny_model.vocab_size, [3], seed=5)
    longer = _prompts(tiny_model.vocab_size, [15, 11, 8], seed=6)
    alone = greedy_generate(
        tiny_model, short, max_new_tokens=8, stop_id=None, batch_size=4, pad_id=PAD
    )
    # A different pad id too: pads must be invisible to the state, whatever their embedding.
    mixed = greedy_generate(
        tiny_model, longer + short, max_new_tokens=8, stop_id=None, batch_size=4, pad_id=7
    )
    assert mixed.timing.batches == 1
    assert mixed.generations[-1].tokens == alone.generations[0].tokens


def test_stop_token_ends_a_sequence_and_is_excluded(tiny_model) -> None:
    prompts = _prompts(tiny_model.vocab_size, [5, 8, 2, 6])
    free = naive_greedy_generate(tiny_model, prompts, max_new_tokens=12, stop_id=None)
    # Pick a token the model emits mid-way through some continuation, so stopping changes things.
    stop_id = next(tokens[3] for tokens in free if len(set(tokens[:4])) > 1)
    result = greedy_generate(
        tiny_model, prompts, max_new_tokens=12, stop_id=stop_id, batch_size=4, pad_id=PAD
    )
    expected = naive_greedy_generate(tiny_model, prompts, max_new_tokens=12, stop_id=stop_id)
    assert [g.tokens for g in result.generations] == expected
    for generation, unstopped in zip(result.generations, free, strict=True):
        assert stop_id not in generation.tokens
        if stop_id in unstopped:
            assert generation.stopped
            assert generation.tokens == unstopped[: unstopped.index(stop_id)]
        else:
            assert not generation.stopped and generation.tokens == unstopped
    assert any(g.stopped for g in result.generations)


def test_end_of_text_stops_as_hf_generate_does(tiny_model) -> None:
    """Issue 15: a sequence ends at EOS as well as at the newline stop, EOS excluded."""
    prompts = _prompts(tiny_model.vocab_size, [5, 8, 2, 6])
    free = naive_greedy_generate(tiny_model, prompts, max_new_tokens=12, stop_id=None)
    eos_id = next(tokens[3] for tokens in free if len(set(tokens[:4])) > 1)
    newline_id = next(t for t in range(tiny_model.vocab_size) if t != eos_id)
    result = greedy_generate(
        tiny_model,
        prompts,
        max_new_tokens=12,
        stop_id=newline_id,
        batch_size=4,
        pad_id=PAD,
        eos_id=eos_id,
    )
    for generation, unstopped in zip(result.generations, free, strict=True):
        cut = [i for i, t in enumerate(unstopped) if t in (eos_id, newline_id)]
        assert generation.tokens == (unstopped[: cut[0]] if cut else unstopped)
        assert generation.stopped == bool(cut)
    assert any(eos_id in tokens for tokens in free)


def test_max_new_tokens_caps_every_sequence(tiny_model) -> None:
    prompts = _prompts(tiny_model.vocab_size, [4, 9])
    for cap in (1, 3):
        result = greedy_generate(
            tiny_model, prompts, max_new_tokens=cap, stop_id=None, batch_size=2, pad_id=PAD
        )
        assert [len(g.tokens) for g in result.generations] == [cap, cap]
        assert not any(g.stopped for g in result.generations)


def test_batch_callback_reports_progress(tiny_model) -> None:
    prompts = _prompts(tiny_model.vocab_size, [3, 4, 5, 6, 7])
    seen: list[int] = []
    greedy_generate(
        tiny_model,
        prompts,
        max_new_tokens=2,
        stop_id=None,
        batch_size=2,
        pad_id=PAD,
        on_batch_done=seen.append,
    )
    assert seen == [2, 4, 5]


def test_rejects_empty_prompt_and_bad_settings(tiny_model) -> None:
    with pytest.raises(ValueError, match=r"prompts\[1\] is empty"):
        greedy_generate(
            tiny_model, [[3], []], max_new_tokens=2, stop_id=None, batch_size=2, pad_id=PAD
        )
    with pytest.raises(ValueError, match="max_new_tokens"):
        greedy_generate(tiny_model, [[3]], max_new_tokens=0, stop_id=None, batch_size=2, pad_id=PAD)
    with pytest.raises(ValueError, match="batch_size"):
        greedy_generate(tiny_model, [[3]], max_new_tokens=1, stop_id=None, batch_size=0, pad_id=PAD)


def test_batched_prompt_nll_matches_naive(tiny_model) -> None:
    prompts = _prompts(tiny_model.vocab_size, [1, 6, 10, 3])
    batched = prompt_nll(tiny_model, prompts, batch_size=3, pad_id=PAD)
    reference = naive_prompt_nll(tiny_model, prompts)
    assert [t.shape[0] for t in batched] == [len(p) - 1 for p in prompts]
    for got, want in zip(batched, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
        assert bool((got >= 0).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_generation_matches_cpu(tiny_model) -> None:
    prompts = _prompts(tiny_model.vocab_size, [9, 1, 4, 12, 4, 6, 2])
    settings = dict(max_new_tokens=10, stop_id=3, batch_size=3, pad_id=PAD)
    on_cpu = greedy_generate(tiny_model, prompts, **settings)
    gpu_model = tiny_model.to("cuda")
    on_gpu = greedy_generate(gpu_model, prompts, **settings)
    assert [g.tokens for g in on_gpu.generations] == [g.tokens for g in on_cpu.generations]
    assert [g.tokens for g in on_gpu.generations] == naive_greedy_generate(
        gpu_model, prompts, max_new_tokens=10, stop_id=3
    )
    assert on_gpu.timing.prefill_seconds > 0 and on_gpu.timing.decode_seconds > 0
    gpu_nll = prompt_nll(gpu_model, prompts, batch_size=3, pad_id=PAD)
    for got, want in zip(gpu_nll, naive_prompt_nll(tiny_model.to("cpu"), prompts), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
