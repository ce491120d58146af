"""The end-to-end benchmark's CPU-checkable parts: the synthetic prompt lengths follow the
paper's counts and window, the grid is priced batch by batch, and our Transformer++ loaded from a
transformers Phi-3's weights (the engine-vs-generate pairing) computes the same logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_configs import VOCAB

from twice_inference.bench.end_to_end import (
    BATCH,
    CONTEXT_TOKENS,
    MAX_PROMPT_TOKENS,
    MEAN_DOC_TOKENS,
    NEW_TOKENS,
    QUESTION_TOKENS,
    TABLE1_MODELS,
    grid_seconds,
    linear,
    phi3_like,
    phi3_to_transformer,
    profiled,
    prompt_lengths,
    timed_steps,
)
from twice_inference.models.layers import rel_error
from twice_inference.models.registry import build_model
from twice_inference.tasks.datasets import PAPER_SIZES


def test_grid_is_the_paper_table1_spec() -> None:
    yaml = pytest.importorskip("yaml")  # transformers' dependency
    spec = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "specs/paper/table1.yaml").read_text()
    )
    assert tuple(spec["models"]) == TABLE1_MODELS
    assert {t["name"] for t in spec["tasks"]} == set(MEAN_DOC_TOKENS)
    assert {t["params"]["contextTokens"] for t in spec["tasks"]} == {CONTEXT_TOKENS}
    generation = spec["generation"]
    assert generation["maxNewTokens"] == NEW_TOKENS and generation["batchSize"] == BATCH
    assert generation["maxPromptTokens"] == MAX_PROMPT_TOKENS


def test_prompt_lengths_follow_the_paper_counts_window_and_strategy() -> None:
    for task in MEAN_DOC_TOKENS:
        default, jrt = prompt_lengths(task, "default"), prompt_lengths(task, "jrt_prompt")
        assert len(default) == len(jrt) == PAPER_SIZES[task]
        assert max(default) <= 950 + QUESTION_TOKENS and min(default) > QUESTION_TOKENS
        assert max(jrt) <= MAX_PROMPT_TOKENS
        # JRT-Prompt reads the same cut document twice
        assert all(
            j == min(2 * d - QUESTION_TOKENS, 2000) for d, j in zip(default, jrt, strict=True)
        )
    assert prompt_lengths("swde", "default") == prompt_lengths("swde", "default")  # seeded
    # short-document tasks stay near their mean; NQ's long documents are all cut to the window
    squad = prompt_lengths("squad", "default")
    assert 140 < sum(squad) / len(squad) - QUESTION_TOKENS < 165
    assert set(prompt_lengths("nq", "default")) == {950 + QUESTION_TOKENS}


def test_grid_is_priced_per_batch_of_the_longest_prompt() -> None:
    line = linear({512: 1.0, 2000: 4.0})
    assert line(512) == 1.0 and line(2000) == 4.0 and line(1256) == pytest.approx(2.5)
    # constant costs: prefill 1 s and 0 s steps count the batches of every cell
    batches = sum(-(-PAPER_SIZES[t] // BATCH) for t in MEAN_DOC_TOKENS for _ in ("default", "jrt"))
    assert grid_seconds(lambda n: 1.0, lambda n: 0.0) == pytest.approx(batches)
    assert grid_seconds(lambda n: 0.0, lambda n: 1.0) == pytest.approx(batches * (NEW_TOKENS - 1))
    # a graphed batch's first step (eager + capture) is priced once, the replays for the rest
    assert grid_seconds(lambda n: 0.0, lambda n: 1.0, lambda n: 10.0) == pytest.approx(
        batches * (10 + NEW_TOKENS - 2)
    )


def test_timed_steps_step_the_engines_decoder_on_the_cpu() -> None:
    torch.manual_seed(0)
    model = build_model(
        "transformer", dict(vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=2)
    ).eval()
    with torch.inference_mode():
        times = timed_steps(model, 2, 9, "cpu", graphs=False)
        assert times.first_s > 0 and times.step_s > 0
        # graphs are asked for but a CPU cannot capture: the price must not pass eager for graphed
        with pytest.raises(RuntimeError, match="could not be captured"):
            timed_steps(model, 2, 9, "cpu", graphs=True)


def test_transformer_loaded_from_phi3_weights_matches_transformers() -> None:
    torch.manual_seed(0)
    ours = build_model(
        "transformer",
        dict(vocab_size=VOCAB, d_model=64, n_layers=2, n_heads=4, rotary_fraction=0.5),
    ).eval()
    hf = phi3_like(ours).eval()
    ours.load_state_dict(phi3_to_transformer(hf.state_dict(), 2), strict=True)
    ids = torch.randint(1, VOCAB, (2, 13))
    with torch.no_grad():
        assert rel_error(ours(ids), hf(input_ids=ids).logits) < 1e-5


def test_profile_reports_wall_time_and_the_operators_that_ran() -> None:
    """The generate comparison's profile (run on the GPU with --profile): its fields exist on any
    device and name the operators the profiled call ran."""
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    result = profiled(lambda: a @ b, "cpu")
    assert result["wall_s"] > 0 and result["cpu_ops"] > 0
    assert result["gpu_busy_s"] == 0.0  # no kernels on the CPU
    assert "aten::mm" in result["top_cpu"] and "aten::mm" in result["top_gpu"]


def test_compare_prompts_are_fixed_and_follow_the_swde_lengths() -> None:
    from twice_inference.bench.end_to_end import compare_prompts

    lengths, prompts = compare_prompts(5)
    assert lengths == prompt_lengths("swde", "default")[:5]
    assert [len(p) for p in prompts] == lengths
    assert all(3 <= t < 1000 for p in prompts for t in p)
    assert compare_prompts(5) == (lengths, prompts)  # the same prompts in every benchmark
