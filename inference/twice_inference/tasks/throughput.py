"""The ``prefill_throughput`` task (kind "throughput", scorer "none"): its examples are not prompts
but (point, round) pairs. The points are (length, batch), the cartesian product lengths x
batchSizes in that order; the task times every point ``runs`` times, once per round, and example
``round * points + point`` is round ``round``'s timing of that point. The orchestrator cuts one
shard per round and runs the rounds of all benchmarked models in turn, so every model's timings
spread over the same stretch of machine load. Params mirror the zod schema in workflows/catalog.ts.
Tested in ``tests/test_throughput.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import Field

from .synthetic import SpecParams, canonical_json, parse_params

# bounds as in workflows/catalog.ts (LIMITS); tests/test_task_catalog.py checks they agree
Length = Annotated[int, Field(ge=1, le=131_072)]
Batch = Annotated[int, Field(ge=1, le=1024)]
MAX_POINTS_PER_AXIS = 32


class PrefillThroughputParams(SpecParams):
    lengths: list[Length] = Field(
        default=[2048, 8192], min_length=1, max_length=MAX_POINTS_PER_AXIS
    )
    batch_sizes: list[Batch] = Field(default=[16], min_length=1, max_length=MAX_POINTS_PER_AXIS)
    runs: int = Field(default=10, ge=10, le=1000)  # the paper's released script: median of 10
    seed: int = Field(default=0, ge=0, le=2**32 - 1)  # seeds every point's random inputs


@dataclass(frozen=True)
class ThroughputPointSpec:
    example_id: int
    seq_len: int
    batch_size: int
    # which (length, batch) point, whatever the round: it seeds the inputs, so every round of a
    # point times the same ones
    point: int


class PrefillThroughputTask:
    name: ClassVar[str] = "prefill_throughput"
    version: ClassVar[int] = 1
    kind: ClassVar[str] = "throughput"

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = parse_params(self.name, PrefillThroughputParams, params)
        self._points = [
            (length, batch) for length in self.params.lengths for batch in self.params.batch_sizes
        ]

    def num_points(self) -> int:
        return len(self._points)

    def num_examples(self) -> int:
        return len(self._points) * self.params.runs

    def points(self, start: int, end: int) -> list[ThroughputPointSpec]:
        if not 0 <= start < end <= self.num_examples():
            raise ValueError(
                f"task {self.name!r}: point range [{start}, {end}) is outside "
                f"[0, {self.num_examples()})"
            )
        width = len(self._points)
        return [
            ThroughputPointSpec(i, *self._points[i % width], point=i % width)
            for i in range(start, end)
        ]

    def data_digest(self) -> str:
        """sha256 over the params with defaults filled in (the points and their random seed)."""
        identity = {
            "name": self.name,
            "version": self.version,
            "params": self.params.model_dump(by_alias=True),
        }
        return hashlib.sha256(canonical_json(identity).encode()).hexdigest()
