"""The worker's command line: flags, environment defaults and refusals. (Polling a real Temporal
server is exercised by the orchestrator's integration tests.)"""

from __future__ import annotations

import pytest

from twice_inference.worker import parse_args


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "evals")
    monkeypatch.setenv("TWICE_GPU_QUEUE", "twice-gpu-a100")
    monkeypatch.setenv("TWICE_DEVICE", "cpu")
    monkeypatch.delenv("TWICE_WORKER_MODEL_CACHE", raising=False)
    args = parse_args([])
    assert (args.address, args.namespace, args.task_queue, args.device) == (
        "temporal:7233",
        "evals",
        "twice-gpu-a100",
        "cpu",
    )
    assert args.max_concurrent == 1 and args.model_cache == 1


def test_model_cache_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWICE_WORKER_MODEL_CACHE", "8")
    assert parse_args([]).model_cache == 8
    assert parse_args(["--model-cache", "2"]).model_cache == 2
    monkeypatch.setenv("TWICE_WORKER_MODEL_CACHE", "0")
    with pytest.raises(SystemExit):
        parse_args([])


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    args = parse_args(
        ["--address", "127.0.0.1:7233", "--task-queue", "twice-gpu", "--max-concurrent", "2"]
    )
    assert (
        args.address == "127.0.0.1:7233"
        and args.task_queue == "twice-gpu"
        and args.max_concurrent == 2
    )


@pytest.mark.parametrize(
    "argv", [["--device", "tpu"], ["--max-concurrent", "0"], ["--model-cache", "-1"]]
)
def test_bad_flags_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
