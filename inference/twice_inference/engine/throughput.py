"""Prefill timing the paper's way (docs/protocol.md, Prefill throughput): warm-up, then ``runs``
timings of the same call (CUDA events between synchronizes on a GPU, perf_counter on the CPU),
reported as median, min and every run, beside SDPA causal attention at the same (batch, N) in the
same process, with the versions that make a number comparable. Tested in
``tests/test_throughput.py``.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..contract import TimedPrefill
from ..models.operators import Workload, sdpa_causal
from ..protocols import LanguageModel
from .device_info import nvidia_driver_version

# The paper's kernel shape for the attention baseline: 16 heads of dim 64 (FA2 "shaped like V").
BASELINE_HEADS, BASELINE_HEAD_DIM = 16, 64
WARMUP_RUNS = 1  # the first call compiles (Triton) or autotunes (cuDNN/flash) and is discarded


@dataclass(frozen=True)
class Timing:
    seconds: list[float]  # one per timed run, in order

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def minimum(self) -> float:
        return min(self.seconds)

    @property
    def total(self) -> float:
        return sum(self.seconds)


def time_callable(
    fn: Callable[[], Any], runs: int, device: torch.device, warmup: int = WARMUP_RUNS
) -> Timing:
    """``warmup`` untimed calls, then ``runs`` timed ones. On CUDA each timing is between two
    events recorded around the call, read after a synchronize, so queued work from the previous
    call cannot leak into the next one."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs} warmup={warmup}")
    on_cuda = device.type == "cuda"
    for _ in range(warmup):
        fn()
    if on_cuda:
        torch.cuda.synchronize(device)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
    seconds = []
    for _ in range(runs):
        if on_cuda:
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            seconds.append(start.elapsed_time(end) / 1000.0)
        else:
            began = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - began)
    # A timer can read 0 for a trivially small call on a coarse clock; the contract needs > 0.
    return Timing([max(s, 1e-9) for s in seconds])


def timed_prefill(implementation: str, timing: Timing, batch: int, seq_len: int) -> TimedPrefill:
    """Tokens per second count the prompt (batch x N), not what was processed: JRT-Prompt's
    second copy is a cost, not throughput."""
    return TimedPrefill(
        implementation=implementation,
        median_seconds=timing.median,
        min_seconds=timing.minimum,
        runs=len(timing.seconds),
        run_seconds=list(timing.seconds),
        tokens_per_second=batch * seq_len / timing.median,
    )


def point_seed(seed: int, example_id: int) -> int:
    """A seed that depends only on (task seed, point), so a retried shard draws the same inputs."""
    state = np.random.SeedSequence([seed, example_id]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> 1)  # torch.Generator.manual_seed wants < 2**63 here


def random_ids(
    batch: int, length: int, vocab: int, seed: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """[batch, length] token ids drawn uniformly from [1, vocab): never all zeros, which some
    tokenizers reserve and which would make every sequence the same."""
    if vocab < 2:
        raise ValueError(f"vocab must be >= 2 to draw ids from [1, vocab), got {vocab}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, length), generator=generator)
    return ids.to(device)


def lm_prefill_workload(
    model: LanguageModel,
    batch: int,
    length: int,
    seed: int,
    dtype_name: str,
    compute: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Workload:
    """A language model's own prefill (``model.prefill``) of random ids [batch, length] with an
    all-ones mask; JRT-RNN's encoder is part of it. ``compute`` is the precision the model runs
    under (``LoadedModel.compute``); entering it is part of what is timed, as in the harness."""
    device = next(model.parameters()).device  # type: ignore[attr-defined]
    ids = random_ids(batch, length, model.vocab_size, seed, device)
    mask = torch.ones_like(ids, dtype=torch.bool)

    def run() -> object:
        with compute():
            return model.prefill(ids, mask)

    return Workload(
        run,
        length,
        f"{model.family}-prefill-{dtype_name}-{device.type}",
        (ids, mask),
    )


def attention_baseline(batch: int, seq_len: int, device: torch.device, seed: int) -> Workload:
    """SDPA causal attention over N tokens at the paper's kernel shape."""
    generator = torch.Generator(device=device).manual_seed(seed)
    return sdpa_causal(
        batch, seq_len, BASELINE_HEADS, BASELINE_HEAD_DIM, generator=generator, device=device
    )


def environment_versions(device: torch.device) -> dict[str, str]:
    """torch, triton (where importable), python; on CUDA also the CUDA runtime, GPU and driver."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import triton

        versions["triton"] = str(triton.__version__)
    except ImportError:
        pass
    if device.type == "cuda":
        versions["cuda"] = str(torch.version.cuda)
        versions["gpu"] = torch.cuda.get_device_name(device)
        versions["driver"] = nvidia_driver_version() or "unknown"
    else:
        versions["cpu"] = platform.processor() or platform.machine()
    return versions
