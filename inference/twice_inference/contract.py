"""The orchestrator contract (``workflows/contract.ts``) on the Python side. The names (GPU task
queue, activity names, error types, the strategies a prefill benchmark times, the revision
formats) are read from ``contract-names.json``, which ``npm run generate`` writes from the
TypeScript, so they exist once. The payloads are pydantic twins of the zod schemas: JSON on the
wire is camelCase, Python attributes are snake_case. ``tests/test_contract.py`` checks them
against the JSON Schema exported from zod (``contract.schema.json``).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

_NAMES: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("contract-names.json").read_text(encoding="utf-8")
)

GPU_QUEUE: str = _NAMES["gpuQueue"]
# Activity names are set explicitly on both sides; SDKs would otherwise name them differently.
RUN_SHARD: str = _NAMES["activities"]["runShard"]
DESCRIBE_TASK: str = _NAMES["activities"]["describeTask"]
DESCRIBE_WORKER: str = _NAMES["activities"]["describeWorker"]

# ApplicationError types the orchestrator's retry policies branch on.
INVALID_SHARD: str = _NAMES["errorTypes"]["invalidShard"]  # never retried
MODEL_LOAD_FAILED: str = _NAMES["errorTypes"]["modelLoadFailed"]
TASK_FAILED: str = _NAMES["errorTypes"]["taskFailed"]
DEVICE_UNAVAILABLE: str = _NAMES["errorTypes"]["deviceUnavailable"]  # retried on another worker
GPU_OUT_OF_MEMORY: str = _NAMES["errorTypes"]["gpuOutOfMemory"]

THROUGHPUT_STRATEGIES: tuple[str, ...] = tuple(_NAMES["throughputStrategies"])
# kind ("zoo", "random", "operator", "hf", "folder") -> the regular expression of that revision form
REVISION_FORMATS: dict[str, str] = dict(_NAMES["revisionFormats"])

Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class ContractModel(BaseModel):
    """Base for every payload: unknown keys are errors (a typo must not silently become a default),
    values are not coerced (zod does not coerce either), and payloads are immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        strict=True,
    )

    def to_json(self) -> dict[str, Any]:
        """The camelCase JSON form the TypeScript side reads."""
        return self.model_dump(by_alias=True, mode="json")


class ModelRef(ContractModel):
    name: NonEmptyStr
    # weights digest for zoo models, HF revision for hub checkpoints, content digest for folders
    revision: NonEmptyStr
    # a spec's checkpoint folder (revision kind "folder"): where the weights are read; absent on
    # the wire for every other model
    folder: (
        Annotated[str, StringConstraints(min_length=1, max_length=1024)] | SkipJsonSchema[None]
    ) = Field(default=None, exclude_if=lambda value: value is None)


class TaskRef(ContractModel):
    name: NonEmptyStr
    version: PositiveInt
    params: dict[str, Any]


class StrategyRef(ContractModel):
    name: NonEmptyStr
    version: PositiveInt
    params: dict[str, Any]


class GenerationSettings(ContractModel):
    max_new_tokens: PositiveInt
    stop_at_newline: bool
    batch_size: PositiveInt
    # prompts longer than this are left-truncated, as the paper's harness does (2048 - 48)
    max_prompt_tokens: PositiveInt


class ScorerRef(ContractModel):
    # none: a measurement task (prefill_throughput) that scores nothing
    name: Literal["contains", "exact", "none"]
    version: PositiveInt


class SliceSettings(ContractModel):
    frequency_threshold: PositiveInt
    frequency_bin_edges: Annotated[list[NonNegativeInt], Field(min_length=1)]
    distance_bin_edges: Annotated[list[PositiveInt], Field(min_length=1)]
    # relative to the worker's data root; None: every re-occurring bigram counts as infrequent
    bigram_counts: NonEmptyStr | None


class RunShardInput(ContractModel):
    cell_key: Digest
    shard_index: NonNegativeInt
    example_start: NonNegativeInt
    example_end: PositiveInt
    model: ModelRef
    task: TaskRef
    strategy: StrategyRef
    generation: GenerationSettings
    scorer: ScorerRef
    slices: SliceSettings | None
    device: Literal["auto", "cpu", "cuda"]

    # A field validator (not a model validator) so the error is located at exampleEnd, as zod's
    # refine reports it.
    @field_validator("example_end")
    @classmethod
    def _end_after_start(cls, example_end: int, info: ValidationInfo) -> int:
        start = info.data.get("example_start")
        if start is not None and example_end <= start:
            raise ValueError(
                f"exampleEnd must be greater than exampleStart ({example_end} <= {start})"
            )
        return example_end


# LIMITS.promptChars in workflows/catalog.ts; tests/test_contract.py checks it against the schema
PROMPT_CHARS = 262_144


class ExampleRecord(ContractModel):
    example_id: NonNegativeInt
    prompt_digest: Digest
    # the decoded prompt_ids the digest is over; optional on the wire only for older workers
    prompt: Annotated[str, StringConstraints(max_length=PROMPT_CHARS)] | SkipJsonSchema[None] = (
        Field(default=None, exclude_if=lambda value: value is None)
    )
    prediction: str
    gold: list[str]
    score: Annotated[float, Field(ge=0, le=1)]
    prompt_tokens: NonNegativeInt
    generated_tokens: NonNegativeInt


class SliceSum(ContractModel):
    """Sums, not means, so Postgres can aggregate perplexity across shards exactly."""

    slice: NonEmptyStr
    nll_sum: NonNegativeFloat
    token_count: NonNegativeInt


class ShardTiming(ContractModel):
    # the phases a worker did not time before they were recorded default to 0, so results from
    # older workers still parse (as zod's ShardTiming)
    queue_seconds: NonNegativeFloat = 0.0
    data_seconds: NonNegativeFloat = 0.0
    load_seconds: NonNegativeFloat
    prefill_seconds: NonNegativeFloat
    decode_seconds: NonNegativeFloat
    nll_seconds: NonNegativeFloat = 0.0
    scoring_seconds: NonNegativeFloat = 0.0
    prefill_tokens: NonNegativeInt
    batches: NonNegativeInt


class WorkerInfo(ContractModel):
    worker_version: str
    python: str
    torch: str
    device: str
    gpu_name: str | None
    driver: str | None
    cuda: str | None
    hostname: str
    pid: int


class ModelInfo(ContractModel):
    family: str
    parameters: NonNegativeInt
    state_bytes: NonNegativeInt
    dtype: str


# LIMITS.prefillRuns in workflows/catalog.ts: the most timed runs a point may have
PREFILL_RUNS = 1000


class TimedPrefill(ContractModel):
    """One timed prefill: warm-up first, then ``runs`` timings, their median, min and each one."""

    implementation: NonEmptyStr
    median_seconds: PositiveFloat
    min_seconds: PositiveFloat
    runs: Annotated[int, Field(ge=1)]
    # every timed run's seconds in the order they ran: the orchestrator computes an interval of
    # the median from them; optional on the wire only for older workers
    run_seconds: (
        Annotated[list[PositiveFloat], Field(min_length=1, max_length=PREFILL_RUNS)]
        | SkipJsonSchema[None]
    ) = Field(default=None, exclude_if=lambda value: value is None)
    # batchSize x seqLen / medianSeconds: a strategy that reads the context twice pays for it here
    tokens_per_second: PositiveFloat

    # A field validator so the error is located at runSeconds, as zod's refine reports it.
    @field_validator("run_seconds")
    @classmethod
    def _one_per_run(
        cls, run_seconds: list[float] | None, info: ValidationInfo
    ) -> list[float] | None:
        runs = info.data.get("runs")
        if run_seconds is not None and runs is not None and len(run_seconds) != runs:
            raise ValueError(
                f"runSeconds must hold one entry per timed run: {len(run_seconds)} entries, "
                f"runs={runs}"
            )
        return run_seconds


class ThroughputPoint(ContractModel):
    """One (length, batch) point of a throughput task, measured beside the attention baseline."""

    example_id: NonNegativeInt
    seq_len: PositiveInt  # the prompt's length N
    batch_size: PositiveInt
    # tokens one timed run pushes through per sequence (N, 2N, or N plus an encoder region)
    processed_len: PositiveInt
    measured: TimedPrefill
    baseline: TimedPrefill  # the same (batch, N) through SDPA attention, in the same process
    versions: dict[str, str]  # GPU, driver, torch/triton/CUDA and kernel versions


class RunShardOutput(ContractModel):
    cell_key: Digest
    shard_index: NonNegativeInt
    # recall tasks: one record per example; measurement tasks: none
    examples: list[ExampleRecord]
    # measurement tasks: one point per example; recall tasks: none
    measurements: list[ThroughputPoint]
    slices: list[SliceSum]
    timing: ShardTiming
    worker: WorkerInfo
    model: ModelInfo


class ShardHeartbeat(ContractModel):
    examples_done: NonNegativeInt


class DescribeTaskInput(ContractModel):
    task: TaskRef


class DescribeTaskOutput(ContractModel):
    num_examples: NonNegativeInt
    # digest of the examples' source data (generator version + params for synthetic tasks)
    data_digest: Digest


# Mirrors CROSS_LANGUAGE_SCHEMAS in contract.ts: the schemas the zod export must agree with.
CROSS_LANGUAGE_MODELS: dict[str, type[ContractModel]] = {
    "RunShardInput": RunShardInput,
    "RunShardOutput": RunShardOutput,
    "ShardHeartbeat": ShardHeartbeat,
    "WorkerInfo": WorkerInfo,
    "DescribeTaskInput": DescribeTaskInput,
    "DescribeTaskOutput": DescribeTaskOutput,
}
