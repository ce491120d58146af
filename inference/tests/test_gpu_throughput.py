"""The prefill_throughput grid path on a GPU: run_shard (the worker's real activity, in Temporal's
ActivityEnvironment) times the paper's kernel-level operators and a zoo model beside SDPA flash
attention, and every result validates against the contract. Skipped without CUDA; the device
run executes it with ``TWICE_GPU_RESULTS`` pointing at a file for the measured points."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import torch
from temporalio.testing import ActivityEnvironment

from twice_inference import contract
from twice_inference.activities import InferenceActivities
from twice_inference.train import ZOO_DIR, sha256_file

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PAPER_LENGTHS = [2048, 8192, 32768]  # batch 16: the paper's length sweep, ends included
RESULTS: list[dict[str, Any]] = []


def shard(model: str, revision: str, strategy: str, lengths: list[int]) -> dict[str, Any]:
    return {
        "cellKey": "e" * 64,
        "shardIndex": 0,
        "exampleStart": 0,
        "exampleEnd": len(lengths),
        "model": {"name": model, "revision": revision},
        "task": {
            "name": "prefill_throughput",
            "version": 1,
            "params": {"lengths": lengths, "batchSizes": [16], "runs": 10, "seed": 0},
        },
        "strategy": {
            "name": strategy,
            "version": 1,
            "params": {"repeats": 2} if strategy == "jrt_prompt" else {},
        },
        "generation": {
            "maxNewTokens": 1,
            "stopAtNewline": True,
            "batchSize": 16,
            "maxPromptTokens": 2000,
        },
        "scorer": {"name": "none", "version": 1},
        "slices": None,
        "device": "cuda",
    }


def measure(model: str, revision: str, strategy: str, lengths: list[int]) -> list[Any]:
    raw = ActivityEnvironment().run(
        InferenceActivities(device="cuda").run_shard, shard(model, revision, strategy, lengths)
    )
    output = contract.RunShardOutput.model_validate(raw)
    for p in output.measurements:
        RESULTS.append(
            {
                "model": model,
                "strategy": strategy,
                "n": p.seq_len,
                "batch": p.batch_size,
                "processedLen": p.processed_len,
                "ms": p.measured.median_seconds * 1e3,
                "implementation": p.measured.implementation,
                "baseline": p.baseline.implementation,
                "baselineMs": p.baseline.median_seconds * 1e3,
                "speedup": p.baseline.median_seconds / p.measured.median_seconds,
                "versions": p.versions,
            }
        )
    return list(output.measurements)


@pytest.mark.parametrize(
    ("op", "strategy", "processed"),
    [
        ("based_triton", "default", 1.0),
        ("based_triton", "jrt_prompt", 2.0),  # JRT-Prompt: the Based kernel at 2N
        ("prefix_triton", "default", 1.5),  # JRT-RNN: decoder N plus an N/2 encoder region
        ("sdpa_flash", "default", 1.0),
    ],
)
def test_kernel_operators_beside_sdpa_flash(op: str, strategy: str, processed: float) -> None:
    name = "op-" + op.replace("_", "-")
    points = measure(name, f"operator:{op}@v1", strategy, PAPER_LENGTHS)
    assert [p.seq_len for p in points] == PAPER_LENGTHS
    for p in points:
        assert p.processed_len == int(processed * p.seq_len)
        assert p.baseline.implementation == "sdpa-flash"
        assert p.measured.runs >= 10 and p.measured.min_seconds <= p.measured.median_seconds
        assert {"gpu", "driver", "torch", "triton", "cuda"} <= set(p.versions)


def test_a_zoo_model_under_both_strategies() -> None:
    digest = sha256_file(ZOO_DIR / "zoo-based-tiny" / "model.safetensors")
    for strategy in ("default", "jrt_prompt"):
        points = measure("zoo-based-tiny", f"sha256:{digest}", strategy, [2048])
        assert points[0].processed_len == (2 if strategy == "jrt_prompt" else 1) * 2048


def teardown_module() -> None:
    path = os.environ.get("TWICE_GPU_RESULTS")
    if path and RESULTS:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1)
