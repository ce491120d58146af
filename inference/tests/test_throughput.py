"""The prefill_throughput task (strict params, points in lengths x batchSizes order, digest), the
timing helper (warm-up then ``runs`` positive timings), random ids, the SDPA baseline and the CPU
operators, whose outputs agree with the ops' float64 references. Shards of
the task through run_shard are tested in tests/test_activities.py."""

from __future__ import annotations

import pytest
import torch

from twice_inference.engine import throughput
from twice_inference.models import operators
from twice_inference.ops.linear_attention.naive import based_linear_attention_naive
from twice_inference.ops.prefix_linear_attention.naive import prefix_linear_attention_naive
from twice_inference.tasks.registry import build_task, task_kind
from twice_inference.tasks.scoring import get_scorer
from twice_inference.tasks.throughput import PrefillThroughputTask

CPU = torch.device("cpu")
PAPER_SHAPE = {"heads": 16, "featureDim": 16, "valueDim": 64}


# ---- the task ---------------------------------------------------------------------------------


def test_defaults_mirror_the_zod_schema() -> None:
    task = build_task("prefill_throughput", 1, {})
    assert isinstance(task, PrefillThroughputTask) and task_kind(task.name) == "throughput"
    assert task.params.model_dump(by_alias=True) == {
        "lengths": [2048, 8192],
        "batchSizes": [16],
        "runs": 10,
        "seed": 0,
    }
    assert task.num_points() == 2 and task.num_examples() == 2 * 10


def test_points_are_lengths_times_batch_sizes_in_order_once_per_round() -> None:
    task = PrefillThroughputTask({"lengths": [64, 128, 256], "batchSizes": [2, 4], "runs": 12})
    assert task.num_points() == 6 and task.num_examples() == 6 * 12
    pairs = [(p.example_id, p.seq_len, p.batch_size, p.point) for p in task.points(0, 6)]
    assert pairs == [
        (0, 64, 2, 0),
        (1, 64, 4, 1),
        (2, 128, 2, 2),
        (3, 128, 4, 3),
        (4, 256, 2, 4),
        (5, 256, 4, 5),
    ]
    # round 3 is examples [18, 24): the same points again
    later = task.points(18, 24)
    assert [(p.example_id, p.point) for p in later] == [(18 + i, i) for i in range(6)]
    assert [(p.seq_len, p.batch_size) for p in later] == [(s, b) for _, s, b, _ in pairs]
    assert [p.example_id for p in task.points(3, 5)] == [3, 4]
    with pytest.raises(ValueError, match=r"point range \[70, 73\) is outside \[0, 72\)"):
        task.points(70, 73)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lengths": [0]}, "lengths.0"),
        ({"lengths": []}, "lengths"),
        ({"batchSizes": [16, -1]}, "batchSizes.1"),
        ({"batch_sizes": [16]}, "batch_sizes"),  # snake_case is not the wire form
        ({"runs": 9}, "runs"),  # the paper's median of 10 is the floor
        ({"runs": 10.0}, "runs"),  # no coercion, as zod
        ({"seed": -1}, "seed"),
        ({"warmup": 3}, "warmup"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"prefill_throughput.*params: {field}: "):
        build_task("prefill_throughput", 1, params)


def test_wrong_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version 2 requested.*implements version 1"):
        build_task("prefill_throughput", 2, {})


def test_data_digest_covers_every_param_with_defaults_filled_in() -> None:
    digest = PrefillThroughputTask({}).data_digest()
    assert len(digest) == 64
    explicit = {"lengths": [2048, 8192], "batchSizes": [16], "runs": 10, "seed": 0}
    assert PrefillThroughputTask(explicit).data_digest() == digest
    for change in ({"runs": 11}, {"seed": 1}, {"lengths": [8192, 2048]}, {"batchSizes": [8]}):
        assert PrefillThroughputTask(change).data_digest() != digest, change


def test_none_scorer_refuses_to_score() -> None:
    with pytest.raises(RuntimeError, match="measurement tasks"):
        get_scorer("none")("anything", ["x"])


# ---- timing -----------------------------------------------------------------------------------


def test_timing_warms_up_then_times_every_run() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        sum(range(2000))

    timing = throughput.time_callable(work, runs=10, device=CPU, warmup=2)
    assert len(calls) == 12 and len(timing.seconds) == 10
    assert all(s > 0 for s in timing.seconds)
    assert 0 < timing.minimum <= timing.median <= max(timing.seconds)
    assert timing.total == pytest.approx(sum(timing.seconds))
    prefill = throughput.timed_prefill("x", timing, batch=4, seq_len=100)
    assert prefill.runs == 10 and prefill.tokens_per_second == pytest.approx(400 / timing.median)
    # every run travels, in the order it ran, for the orchestrator's interval of the median
    assert prefill.run_seconds == timing.seconds
    with pytest.raises(ValueError, match="runs must be >= 1"):
        throughput.time_callable(work, runs=0, device=CPU)


def test_random_ids_are_seeded_and_never_zero() -> None:
    ids = throughput.random_ids(3, 500, vocab=2, seed=5)
    assert ids.shape == (3, 500) and bool((ids == 1).all())  # [1, 2) has one id
    wide = throughput.random_ids(2, 1000, vocab=50, seed=5)
    assert int(wide.min()) >= 1 and int(wide.max()) <= 49
    assert torch.equal(wide, throughput.random_ids(2, 1000, vocab=50, seed=5))
    assert not torch.equal(wide, throughput.random_ids(2, 1000, vocab=50, seed=6))
    with pytest.raises(ValueError, match="vocab must be >= 2"):
        throughput.random_ids(1, 4, vocab=1, seed=0)
    assert throughput.point_seed(0, 1) == throughput.point_seed(0, 1) != throughput.point_seed(1, 0)


def test_cpu_baseline_is_causal_sdpa_in_float32() -> None:
    baseline = throughput.attention_baseline(batch=2, seq_len=24, device=CPU, seed=1)
    assert baseline.implementation == "sdpa-math-cpu" and baseline.processed_len == 24
    q, k, v = baseline.inputs
    assert q.shape == (2, 16, 24, 64) and q.dtype == torch.float32
    scores = (q.double() @ k.double().transpose(-1, -2)) / 8.0
    scores = scores.masked_fill(torch.ones(24, 24, dtype=torch.bool).triu(1), float("-inf"))
    expected = scores.softmax(-1) @ v.double()
    assert torch.allclose(baseline.run().double(), expected, atol=1e-5)


def test_versions_name_the_libraries() -> None:
    versions = throughput.environment_versions(CPU)
    assert versions["torch"] == torch.__version__ and versions["python"].count(".") == 2
    assert "gpu" not in versions


# ---- operators --------------------------------------------------------------------------------


def _relative(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.double() - expected).norm() / expected.norm())


@pytest.mark.parametrize("repeats", [1, 2])
def test_based_torch_operator_agrees_with_the_reference(repeats: int) -> None:
    op = operators.Operator("based_torch", PAPER_SHAPE, "cpu")
    workload = op.workload(batch=1, seq_len=40, repeats=repeats, seed=3)
    assert workload.processed_len == 40 * repeats
    assert workload.implementation == "based-torch-chunked-fp32-cpu"
    q, k, v = workload.inputs
    assert q.dtype == torch.bfloat16 and q.shape == (1, 16, 40 * repeats, 16)
    assert v.shape == (1, 16, 40 * repeats, 64)
    assert float(q.float().std()) == pytest.approx(1 / 16, rel=0.1)  # scaled by 1/d
    expected = based_linear_attention_naive(q, k, v)
    assert _relative(workload.run(), expected) < 1e-4


def test_prefix_torch_operator_reads_an_encoder_of_half_the_prompt() -> None:
    op = operators.Operator("prefix_torch", {**PAPER_SHAPE, "encoderFraction": 0.5}, "cpu")
    workload = op.workload(batch=2, seq_len=30, repeats=1, seed=4)
    assert workload.processed_len == 30 + 15
    q, k, v, k_enc, v_enc = workload.inputs
    assert q.shape[2] == 30 and k_enc.shape == (2, 16, 15, 16) and v_enc.shape == (2, 16, 15, 64)
    expected = prefix_linear_attention_naive(q, k, v, k_enc, v_enc)
    assert _relative(workload.run(), expected) < 1e-4
    # jrt_prompt on the prefix op: the decoder reads 2N, the encoder still N/2
    assert op.workload(batch=1, seq_len=30, repeats=2, seed=4).processed_len == 60 + 15


def test_operator_inputs_are_seeded() -> None:
    op = operators.Operator("sdpa_flash", PAPER_SHAPE, "cpu")
    first, again, other = (op.workload(1, 8, 1, seed) for seed in (7, 7, 8))
    assert torch.equal(first.inputs[0], again.inputs[0])
    assert not torch.equal(first.inputs[0], other.inputs[0])
    assert first.implementation == "sdpa-math-cpu" and op.dtype == torch.float32


@pytest.mark.parametrize("op", ["based_triton", "prefix_triton"])
def test_triton_operators_need_cuda(op: str) -> None:
    config = {**PAPER_SHAPE, "encoderFraction": 0.5} if op == "prefix_triton" else PAPER_SHAPE
    with pytest.raises(operators.OperatorUnavailable, match="needs a CUDA device.*cpu"):
        operators.Operator(op, config, "cpu")


def test_operator_config_is_strict() -> None:
    with pytest.raises(ValueError, match="unknown operator 'flash3'"):
        operators.Operator("flash3", PAPER_SHAPE, "cpu")
    with pytest.raises(ValueError, match="heads"):
        operators.Operator("based_torch", {**PAPER_SHAPE, "heads": "16"}, "cpu")
    with pytest.raises(ValueError, match="encoderFraction is required for prefix ops"):
        operators.Operator("prefix_torch", PAPER_SHAPE, "cpu")
    with pytest.raises(ValueError, match="batch, seq_len, repeats must be >= 1"):
        operators.Operator("based_torch", PAPER_SHAPE, "cpu").workload(0, 8, 1, 0)
