"""The GPU task queue's Temporal activities: ``run_shard``, ``describe_task``, ``describe_worker``.

Payloads are plain JSON dicts validated against ``contract.py`` at entry and exit. A recall task's
shard generates and scores; a throughput task's shard (prefill_throughput) times one prefill per
point once beside the attention baseline (one round of the benchmark) and returns measurements
instead of examples. The model and task registries are imported lazily (and can be injected), so
the worker starts without loading any adapter. ``tests/test_activities.py`` runs them in
``temporalio.testing.ActivityEnvironment``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import torch
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from twice_inference import contract
from twice_inference.engine.device_info import resolve_device, worker_info
from twice_inference.engine.generate import greedy_generate, prompt_nll
from twice_inference.engine.throughput import (
    Timing,
    attention_baseline,
    environment_versions,
    lm_prefill_workload,
    point_seed,
    time_callable,
    timed_prefill,
)
from twice_inference.heartbeats import shard_heartbeats
from twice_inference.models.operators import Operator, OperatorUnavailable, Workload
from twice_inference.protocols import Example, LanguageModel, StrategySpec, Task, Tokenizer

if TYPE_CHECKING:  # the task registries are imported lazily
    from twice_inference.tasks.perplexity import PerplexityTask
    from twice_inference.tasks.throughput import PrefillThroughputTask, ThroughputPointSpec

# Failure types the orchestrator can branch on (Temporal carries them as ApplicationError.type).
INVALID_SHARD = contract.INVALID_SHARD
MODEL_LOAD_FAILED = contract.MODEL_LOAD_FAILED
TASK_FAILED = contract.TASK_FAILED
DEVICE_UNAVAILABLE = contract.DEVICE_UNAVAILABLE
GPU_OUT_OF_MEMORY = contract.GPU_OUT_OF_MEMORY


class ModelDescription(Protocol):
    @property
    def family(self) -> str: ...

    @property
    def parameters(self) -> int: ...

    @property
    def dtype(self) -> str: ...


class LoadedModel(Protocol):
    """What ``twice_inference.models.registry.load_model`` returns. Operators (family
    "operator", kernel-level entries for throughput tasks) have no tokenizer. Read-only members,
    so the registry's concrete types satisfy it."""

    @property
    def model(self) -> LanguageModel | Operator: ...

    @property
    def tokenizer(self) -> Tokenizer | None: ...

    @property
    def info(self) -> ModelDescription: ...

    def state_bytes(self, prompt_len: int) -> int: ...

    def compute(self) -> AbstractContextManager[object]:
        """The precision the model's forward passes run under (an autocast, or nothing)."""
        ...


class LoadModel(Protocol):
    """(name, revision, device), and a spec checkpoint's folder when the model has one."""

    def __call__(
        self, name: str, revision: str, device: str, *, folder: str | None = None
    ) -> LoadedModel: ...


BuildTask = Callable[[str, int, dict[str, Any]], Any]  # (name, version, params) -> a task
SliceSums = Callable[[list[int], list[float], contract.SliceSettings], list[Any]]
M = TypeVar("M", bound=contract.ContractModel)
# (shard, task, device, the shard's phase clock) -> the RunShardOutput JSON
ShardHandler = Callable[[contract.RunShardInput, Any, torch.device, "Phases"], dict[str, Any]]

# Built tasks kept per worker: a paper task reads and indexes its dataset when it is built, which
# every shard of a cell would otherwise repeat.
TASK_CACHE_SIZE = 16


@dataclass
class Phases:
    """The seconds of a shard's phases that are spent before the device is taken (ShardTiming's
    queue and data); the others are timed where they run."""

    queue: float = 0.0
    data: float = 0.0

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, phase, getattr(self, phase) + time.perf_counter() - started)


def _server_queue_seconds() -> float:
    """How long this attempt waited on the server's task queue before a poller took it."""
    info = activity.info()
    waited = (info.started_time - info.current_attempt_scheduled_time).total_seconds()
    return max(0.0, waited)


def _registry_load_model(
    name: str, revision: str, device: str, *, folder: str | None = None
) -> LoadedModel:
    from twice_inference.models.registry import load_model

    return load_model(name, revision, device, folder=folder)


def _registry_build_task(name: str, version: int, params: dict[str, Any]) -> Any:
    from twice_inference.tasks.registry import build_task

    return build_task(name, version, params)


def _registry_slice_sums(
    prompt_ids: list[int], nll: list[float], settings: contract.SliceSettings
) -> list[Any]:
    from twice_inference.tasks.slices import slice_sums

    return slice_sums(prompt_ids, nll, settings)


def import_registries() -> list[str]:
    """Imports what a worker's first shard would otherwise import while the sweep waits on it:
    the model and task registries, every model family, the scorers and strategies (py-spy put a
    loaded machine's first shard at 1.3 s of imports). Returns the families that cannot import."""
    from twice_inference.models.registry import import_families
    from twice_inference.tasks import registry, scoring, strategies  # noqa: F401

    return import_families()


def parse_payload(model: type[M], payload: Any) -> M:
    """Validate an incoming payload; a bad one fails the activity for good, naming each field."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<payload>'}: {e['msg']}"
            f" (got {e['input']!r:.80})"
            for e in error.errors()
        )
        raise ApplicationError(
            f"invalid {model.__name__}: {problems}", type=INVALID_SHARD, non_retryable=True
        ) from error


def prompt_digest(prompt_ids: list[int]) -> str:
    """sha256 of the token ids the model actually saw (after truncation), as compact JSON."""
    return hashlib.sha256(json.dumps(prompt_ids, separators=(",", ":")).encode()).hexdigest()


def prompt_text(decoded: str) -> str:
    """The prompt as the dashboard shows it: its tail when longer than the contract allows,
    marked as cut (the model, too, reads a long prompt's tail)."""
    if len(decoded) <= contract.PROMPT_CHARS:
        return decoded
    # room for the marker, whose count has at most 20 digits
    keep = contract.PROMPT_CHARS - 40
    return f"[{len(decoded) - keep} characters cut] " + decoded[-keep:]


def task_data_digest(task: Task, ref: contract.TaskRef) -> str:
    """The task's own data digest where it provides one; otherwise the canonical JSON of its
    reference, which pins a synthetic generator completely."""
    own = getattr(task, "data_digest", None)
    if callable(own):
        return str(own())
    canonical = json.dumps(
        {"name": ref.name, "version": ref.version, "params": ref.params},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sum_slices(per_example: list[list[Any]]) -> list[contract.SliceSum]:
    totals: dict[str, tuple[float, int]] = {}
    for sums in per_example:
        for item in sums:
            row = item if isinstance(item, Mapping) else vars(item)
            name = str(row["slice"])
            nll = float(row["nllSum"] if "nllSum" in row else row["nll_sum"])
            count = int(row["tokenCount"] if "tokenCount" in row else row["token_count"])
            previous_nll, previous_count = totals.get(name, (0.0, 0))
            totals[name] = (previous_nll + nll, previous_count + count)
    return [
        contract.SliceSum(slice=name, nll_sum=nll, token_count=count)
        for name, (nll, count) in sorted(totals.items())
    ]


class DeviceSlots:
    """The device's compute slots, handed to waiting shards in arrival order, except that a shard
    whose model is loaded goes before shards of other models. Shards arrive model-major, but a
    worker that holds more than one waiting shard (``--prefetch`` above 1) may hold shards of two
    models at a model boundary; taking the loaded model's first keeps one load per model."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._cond = threading.Condition()
        self._tickets = 0
        # ticket -> whether its shard's model is loaded now (asked when a slot is handed out)
        self._waiting: dict[int, Callable[[], bool]] = {}

    @contextmanager
    def waiting(self, resident: Callable[[], bool]) -> Iterator[Callable[[float], bool]]:
        """Queues a shard; yields ``acquire(timeout) -> bool``, which may be called again after
        a timeout (to heartbeat) without losing the shard's place."""
        with self._cond:
            ticket = self._tickets
            self._tickets += 1
            self._waiting[ticket] = resident

        def acquire(timeout: float) -> bool:
            with self._cond:
                taken = self._cond.wait_for(
                    lambda: self._free > 0 and self._next() == ticket, timeout=timeout
                )
                if taken:
                    self._free -= 1
                    del self._waiting[ticket]
                    # the next in line may be another shard, now that this one left the queue
                    self._cond.notify_all()
                return taken

        try:
            yield acquire
        finally:
            with self._cond:
                if self._waiting.pop(ticket, None) is not None:
                    self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()

    def _next(self) -> int:
        tickets = sorted(self._waiting)
        return next((t for t in tickets if self._waiting[t]()), tickets[0])


class InferenceActivities:
    """Activities bound to one worker process: its default device and a small LRU of loaded
    models (shards arrive model-major, so one resident model is usually enough).

    ``compute_slots`` shards hold the device at once. A worker that takes more shards than that
    (``--prefetch``) builds and tokenizes the next shard's examples while the current one
    computes, and scores and returns the previous one meanwhile, so the device does not wait for
    the data, the scoring or the round trip to Temporal between shards."""

    def __init__(
        self,
        *,
        device: str = "auto",
        model_cache_size: int = 1,
        compute_slots: int = 1,
        load_model: LoadModel = _registry_load_model,
        build_task: BuildTask = _registry_build_task,
        slice_sums: SliceSums = _registry_slice_sums,
    ) -> None:
        if model_cache_size < 1:
            raise ValueError(f"model_cache_size must be >= 1, got {model_cache_size}")
        if compute_slots < 1:
            raise ValueError(f"compute_slots must be >= 1, got {compute_slots}")
        self._compute = DeviceSlots(compute_slots)
        # one heartbeat in flight per computing shard (twice_inference/heartbeats.py)
        self._heartbeat_sender = ThreadPoolExecutor(
            max_workers=compute_slots, thread_name_prefix="heartbeat"
        )
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._tasks_lock = threading.Lock()
        self.default_device = device
        resolve_device(device)  # fail at start-up, not on the first shard
        self._cache_size = model_cache_size
        self._models: OrderedDict[tuple[str, str, str, str], LoadedModel] = OrderedDict()
        self._models_lock = threading.Lock()
        self._load_model = load_model
        self._build_task = build_task
        self._slice_sums = slice_sums
        # the (workload, shape) pairs this process has warmed up: a benchmark round times each of
        # its points once, and only the first round of a point in a process pays the warm-up
        self._warmed: set[tuple[Any, ...]] = set()
        # task kind -> the method that runs a shard of it (a task's ``kind``, "recall" if absent)
        self._shard_handlers: dict[str, ShardHandler] = {
            "recall": self._run_recall_shard,
            "throughput": self._run_throughput_shard,
            "perplexity": self._run_perplexity_shard,
        }

    # ---- activities ------------------------------------------------------------------------

    @activity.defn(name=contract.DESCRIBE_WORKER)
    def describe_worker(self) -> dict[str, Any]:
        return worker_info(resolve_device(self.default_device)).to_json()

    @activity.defn(name=contract.DESCRIBE_TASK)
    def describe_task(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = parse_payload(contract.DescribeTaskInput, payload)
        task = self._task(request.task)
        return contract.DescribeTaskOutput(
            num_examples=task.num_examples(), data_digest=task_data_digest(task, request.task)
        ).to_json()

    @activity.defn(name=contract.RUN_SHARD)
    def run_shard(self, payload: dict[str, Any]) -> dict[str, Any]:
        phases = Phases(queue=_server_queue_seconds())
        with phases.timing("data"):
            shard = parse_payload(contract.RunShardInput, payload)
            device = self._device(shard.device)
            task = self._task(shard.task)
        # One handler per task kind; a kind is what a task measures, not its name.
        kind = getattr(task, "kind", "recall")
        handler = self._shard_handlers.get(kind)
        if handler is None:
            raise ApplicationError(
                f"task {shard.task.name!r} is of kind {kind!r}, which this worker cannot run; "
                f"it runs {sorted(self._shard_handlers)}",
                type=INVALID_SHARD,
                non_retryable=True,
            )
        return handler(shard, task, device, phases)

    @contextmanager
    def _compute_slot(
        self, phases: Phases, model: contract.ModelRef, device: torch.device
    ) -> Iterator[None]:
        """Holds one of the device's compute slots; a prefetched shard waits here, ready, and
        heartbeats while it waits (its wait counts as queue time). A shard of the loaded model
        gets the slot before shards of another model (DeviceSlots)."""
        started = time.perf_counter()
        key = (model.name, model.revision, model.folder or "", str(device))
        # read without _models_lock, which a load holds for its whole length: a waiting shard
        # must keep heartbeating meanwhile, and a stale answer only changes who goes first
        with self._compute.waiting(lambda: key in self._models) as acquire:
            while not acquire(1.0):
                activity.heartbeat(contract.ShardHeartbeat(examples_done=0).to_json())
                if activity.is_cancelled():
                    raise CancelledError("run_shard cancelled while waiting for the device")
        phases.queue += time.perf_counter() - started
        try:
            yield
        finally:
            self._compute.release()

    def _run_recall_shard(
        self,
        shard: contract.RunShardInput,
        task: Task,
        device: torch.device,
        phases: Phases,
    ) -> dict[str, Any]:
        """Generate for every example of the shard, score each, and sum the per-slice NLL. The
        examples are built and tokenized before the device is taken when the model (whose
        tokenizer they need) is already resident; the first shard of a model does it after."""
        if shard.scorer.name == "none":
            raise ApplicationError(
                f"task {shard.task.name!r} is a recall task; scorer 'none' is for measurement "
                f"tasks",
                type=INVALID_SHARD,
                non_retryable=True,
            )
        scorer = _scorer(shard.scorer)
        strategy = StrategySpec(
            shard.strategy.name, shard.strategy.version, dict(shard.strategy.params)
        )
        settings = shard.generation

        prepared: tuple[LoadedModel, list[Example], list[list[int]]] | None = None
        resident = self._resident(shard.model, device)
        if resident is not None:
            with phases.timing("data"):
                prepared = (resident, *_recall_inputs(shard, task, resident, strategy))

        # entered before the slot, left after it: the last heartbeat is awaited off the device
        with (
            shard_heartbeats(self._heartbeat_sender) as beats,
            self._compute_slot(phases, shard.model, device),
        ):
            loaded, load_seconds = self._model(shard.model, device)
            if prepared is None or prepared[0] is not loaded:
                # the model was not resident, or was evicted and reloaded while this shard waited
                with phases.timing("data"):
                    prepared = (loaded, *_recall_inputs(shard, task, loaded, strategy))
            _, examples, prompts = prepared
            tokenizer, model = loaded.tokenizer, loaded.model
            # _recall_inputs refused operators and models without a tokenizer
            assert tokenizer is not None and not isinstance(model, Operator)
            # JRT-RNN's Table 4 modes are strategies; "iterate" re-encodes after every new
            # token, the others prefill once. Set per shard: the cached model may have served
            # another strategy.
            set_mode = getattr(model, "set_inference_mode", None)
            if set_mode is not None:
                set_mode("iterate" if strategy.name == "jrt_rnn_iterate" else "left_pad")
            set_padding = getattr(model, "set_pad_semantics", None)
            if set_padding is not None:
                # the engine's batch pads and the encoder's are then one token (GPT-2: 220, " ")
                set_padding(strategy.params.get("padding", "masked"), pad_id=tokenizer.pad_id)

            with _typed_gpu_errors(), loaded.compute():
                result = greedy_generate(
                    model,
                    prompts,
                    max_new_tokens=settings.max_new_tokens,
                    stop_id=tokenizer.newline_id if settings.stop_at_newline else None,
                    batch_size=settings.batch_size,
                    pad_id=tokenizer.pad_id,
                    on_batch_done=beats.beat,
                    eos_id=getattr(tokenizer, "eos_id", None),
                )
                nll, nll_started = None, time.perf_counter()
                if shard.slices is not None:
                    nll = [
                        values.tolist()
                        for values in prompt_nll(
                            model,
                            prompts,
                            batch_size=settings.batch_size,
                            pad_id=tokenizer.pad_id,
                            on_batch_done=lambda _: beats.beat(len(prompts)),
                        )
                    ]
                nll_seconds = time.perf_counter() - nll_started

        return self._recall_output(
            shard,
            loaded,
            (load_seconds, nll_seconds),
            device,
            examples,
            prompts,
            result,
            nll,
            scorer,
            phases,
        )

    def _recall_output(
        self,
        shard: contract.RunShardInput,
        loaded: LoadedModel,
        load_and_nll_seconds: tuple[float, float],
        device: torch.device,
        examples: list[Example],
        prompts: list[list[int]],
        result: Any,
        nll: list[list[float]] | None,
        scorer: Scorer,
        phases: Phases,
    ) -> dict[str, Any]:
        """Detokenize and score the generations, sum the slices: no device work."""
        scoring_started = time.perf_counter()
        load_seconds, nll_seconds = load_and_nll_seconds
        settings = shard.generation
        tokenizer = loaded.tokenizer
        assert tokenizer is not None
        slices: list[contract.SliceSum] = []
        if shard.slices is not None and nll is not None:
            slices = _sum_slices(
                [
                    self._slice_sums(prompt, values, shard.slices)
                    for prompt, values in zip(prompts, nll, strict=True)
                ]
            )
        records = []
        for example, prompt, generation in zip(examples, prompts, result.generations, strict=True):
            prediction = tokenizer.decode(generation.tokens)
            if settings.stop_at_newline:
                # A multi-character token can carry the newline; the harness cuts the text there.
                prediction = prediction.split("\n", 1)[0]
            records.append(
                contract.ExampleRecord(
                    example_id=example.example_id,
                    prompt_digest=prompt_digest(prompt),
                    prompt=prompt_text(tokenizer.decode(prompt)),
                    prediction=prediction,
                    gold=list(example.gold),
                    score=_score(scorer, prediction, example),
                    prompt_tokens=len(prompt),
                    generated_tokens=len(generation.tokens),
                )
            )

        timing = result.timing
        return contract.RunShardOutput(
            cell_key=shard.cell_key,
            shard_index=shard.shard_index,
            examples=records,
            measurements=[],
            slices=slices,
            timing=contract.ShardTiming(
                queue_seconds=phases.queue,
                data_seconds=phases.data,
                load_seconds=load_seconds,
                prefill_seconds=timing.prefill_seconds,
                decode_seconds=timing.decode_seconds,
                nll_seconds=nll_seconds,
                # up to here: the payload's own validation and serialisation come after
                scoring_seconds=time.perf_counter() - scoring_started,
                prefill_tokens=timing.prefill_tokens,
                batches=timing.batches,
            ),
            worker=worker_info(device),
            model=_model_info(loaded, max((len(p) for p in prompts), default=0)),
        ).to_json()

    def _run_perplexity_shard(
        self,
        shard: contract.RunShardInput,
        task: PerplexityTask,
        device: torch.device,
        phases: Phases,
    ) -> dict[str, Any]:
        """Teacher-forced NLL of each sequence, summed per slice of the paper's protocol (the
        task's docstring); no generation, no examples, only slice sums. The sequences need the
        model's tokenizer, so they are read once the device is held."""
        if shard.scorer.name != "none" or shard.slices is None:
            raise ApplicationError(
                f"task {shard.task.name!r} measures perplexity: its scorer is 'none' and it needs "
                f"slice settings (got scorer {shard.scorer.name!r}, slices {shard.slices!r})",
                type=INVALID_SHARD,
                non_retryable=True,
            )
        _scorer(shard.scorer)
        if shard.strategy.name != "default":
            raise ApplicationError(
                f"task {shard.task.name!r} reads a corpus as it is: strategy 'default' only, got "
                f"{shard.strategy.name!r}",
                type=INVALID_SHARD,
                non_retryable=True,
            )
        from twice_inference.tasks.perplexity import protocol_slice_sums

        with (
            shard_heartbeats(self._heartbeat_sender) as beats,
            self._compute_slot(phases, shard.model, device),
        ):
            loaded, load_seconds = self._model(shard.model, device)
            tokenizer, model = loaded.tokenizer, loaded.model
            if tokenizer is None or isinstance(model, Operator):
                raise ApplicationError(
                    f"model {shard.model.name!r} is a kernel-level operator: it cannot score the "
                    f"perplexity task",
                    type=INVALID_SHARD,
                    non_retryable=True,
                )
            with phases.timing("data"):
                sequences, table = _perplexity_inputs(shard, task, tokenizer)
            set_mode = getattr(model, "set_inference_mode", None)
            if set_mode is not None:
                set_mode("left_pad")
            started = time.perf_counter()
            with _typed_gpu_errors():
                nll = prompt_nll(
                    model,
                    sequences,
                    batch_size=shard.generation.batch_size,
                    pad_id=tokenizer.pad_id,
                    on_batch_done=beats.beat,
                )
            seconds = time.perf_counter() - started
        scoring_started = time.perf_counter()
        slices = _sum_slices(
            [
                protocol_slice_sums(ids, values.tolist(), shard.slices, table, task.params)
                for ids, values in zip(sequences, nll, strict=True)
            ]
        )
        tokens = sum(len(s) for s in sequences)
        return contract.RunShardOutput(
            cell_key=shard.cell_key,
            shard_index=shard.shard_index,
            examples=[],
            measurements=[],
            slices=slices,
            timing=contract.ShardTiming(
                queue_seconds=phases.queue,
                data_seconds=phases.data,
                load_seconds=load_seconds,
                prefill_seconds=seconds,
                decode_seconds=0.0,
                nll_seconds=0.0,
                scoring_seconds=time.perf_counter() - scoring_started,
                prefill_tokens=tokens,
                batches=max(1, -(-len(sequences) // shard.generation.batch_size)),
            ),
            worker=worker_info(device),
            model=_model_info(loaded, max((len(s) for s in sequences), default=0)),
        ).to_json()

    def _run_throughput_shard(
        self,
        shard: contract.RunShardInput,
        task: PrefillThroughputTask,
        device: torch.device,
        phases: Phases,
    ) -> dict[str, Any]:
        """One ThroughputPoint per example id, each a (point, round) pair: the model (or operator)
        timed once at (batch, N) under the strategy, then SDPA attention once at the same
        (batch, N), in this process, after a warm-up of each the first time this process times it.
        Inputs are random, drawn per point (the same in every round) before the timed region;
        generation settings and slices do not apply."""
        repeats = _prefill_repeats(shard.strategy, shard.task.name)
        if shard.scorer.name != "none":
            raise ApplicationError(
                f"task {shard.task.name!r} is a measurement task; its scorer is 'none', got "
                f"{shard.scorer.name!r}",
                type=INVALID_SHARD,
                non_retryable=True,
            )
        _scorer(shard.scorer)  # the version check
        try:
            points = task.points(shard.example_start, shard.example_end)
        except ValueError as error:
            raise ApplicationError(str(error), type=INVALID_SHARD, non_retryable=True) from error
        # a timing owns the device: nothing else computes while it runs
        with self._compute_slot(phases, shard.model, device):
            loaded, load_seconds = self._model(shard.model, device)
            return self._time_points(
                shard, task, points, repeats, loaded, load_seconds, device, phases
            )

    def _time_points(
        self,
        shard: contract.RunShardInput,
        task: PrefillThroughputTask,
        points: list[ThroughputPointSpec],
        repeats: int,
        loaded: LoadedModel,
        load_seconds: float,
        device: torch.device,
        phases: Phases,
    ) -> dict[str, Any]:
        seed = task.params.seed
        warm = _WarmUps(self._warmed, _model_key(shard.model, device))
        versions = environment_versions(device) | _measured_versions(loaded)
        measurements: list[contract.ThroughputPoint] = []
        prefill_seconds, prefill_tokens, timed_runs = 0.0, 0, 0
        with _typed_gpu_errors(), torch.inference_mode():
            for done, point in enumerate(points, start=1):
                inputs_seed = point_seed(seed, point.point)
                measurement, measured = _measure_point(
                    loaded, point, repeats, inputs_seed, device, versions, warm
                )
                measurements.append(measurement)
                prefill_seconds += measured.total
                prefill_tokens += (
                    len(measured.seconds) * point.batch_size * measurement.processed_len
                )
                timed_runs += len(measured.seconds)
                activity.heartbeat(contract.ShardHeartbeat(examples_done=done).to_json())
                if activity.is_cancelled():
                    raise CancelledError("run_shard cancelled")

        return contract.RunShardOutput(
            cell_key=shard.cell_key,
            shard_index=shard.shard_index,
            examples=[],
            measurements=measurements,
            slices=[],
            # the measured implementation's timed runs only (not warm-up, not the baseline)
            timing=contract.ShardTiming(
                queue_seconds=phases.queue,
                data_seconds=phases.data,
                load_seconds=load_seconds,
                prefill_seconds=prefill_seconds,
                decode_seconds=0.0,
                nll_seconds=0.0,
                scoring_seconds=0.0,
                prefill_tokens=prefill_tokens,
                batches=timed_runs,
            ),
            worker=worker_info(device),
            model=_model_info(loaded, max(m.processed_len for m in measurements)),
        ).to_json()

    # ---- helpers ---------------------------------------------------------------------------

    def _device(self, requested: str) -> torch.device:
        try:
            return resolve_device(self.default_device if requested == "auto" else requested)
        except ValueError as error:
            raise ApplicationError(str(error), type=DEVICE_UNAVAILABLE) from error

    def _task(self, ref: contract.TaskRef) -> Task:
        """The built task, from the cache when a shard of the same task came before."""
        key = json.dumps(ref.to_json(), sort_keys=True, separators=(",", ":"))
        with self._tasks_lock:
            if key in self._tasks:
                self._tasks.move_to_end(key)
                return self._tasks[key]
        try:
            task: Task = self._build_task(ref.name, ref.version, dict(ref.params))
        except (KeyError, ValueError) as error:
            raise ApplicationError(
                f"task {ref.name!r} v{ref.version}: {error}", type=INVALID_SHARD, non_retryable=True
            ) from error
        with self._tasks_lock:
            self._tasks[key] = task
            while len(self._tasks) > TASK_CACHE_SIZE:
                self._tasks.popitem(last=False)
        return task

    def _resident(self, ref: contract.ModelRef, device: torch.device) -> LoadedModel | None:
        """The model if it is loaded already; never loads (that needs the device)."""
        with self._models_lock:
            return self._models.get((ref.name, ref.revision, ref.folder or "", str(device)))

    def _model(self, ref: contract.ModelRef, device: torch.device) -> tuple[LoadedModel, float]:
        """(model, seconds spent loading it: 0 when it was already resident)."""
        key = _model_key(ref, device)
        with self._models_lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key], 0.0
            # a model loaded afresh is warmed up afresh
            for warmed in [w for w in self._warmed if w[: len(key)] == key]:
                self._warmed.discard(warmed)
            while len(self._models) >= self._cache_size:
                self._models.popitem(last=False)
                if device.type == "cuda":
                    gc.collect()
                    torch.cuda.empty_cache()  # hand the evicted weights' memory back first
            started = time.perf_counter()
            where = f"model {ref.name!r} revision {ref.revision!r}"
            if ref.folder is not None:
                # a spec's checkpoint folder is a data path: the same roots bound it here
                from twice_inference.tasks.data_roots import check_data_path

                try:
                    check_data_path(ref.folder, f"checkpoints.{ref.name}.folder")
                except ValueError as error:
                    raise ApplicationError(
                        f"{where}: {error}", type=INVALID_SHARD, non_retryable=True
                    ) from error
            try:
                with _typed_gpu_errors():
                    if ref.folder is None:
                        loaded = self._load_model(ref.name, ref.revision, str(device))
                    else:
                        loaded = self._load_model(
                            ref.name, ref.revision, str(device), folder=ref.folder
                        )
            except ApplicationError:
                raise
            except (FileNotFoundError, KeyError, ValueError) as error:
                # The model or revision does not exist here; retrying cannot help.
                raise ApplicationError(
                    f"{where}: {error}", type=MODEL_LOAD_FAILED, non_retryable=True
                ) from error
            except OperatorUnavailable as error:  # e.g. a Triton kernel on a CPU worker
                raise ApplicationError(f"{where}: {error}", type=DEVICE_UNAVAILABLE) from error
            except Exception as error:  # e.g. a family whose kernels are missing on this host
                raise ApplicationError(f"{where}: {error}", type=MODEL_LOAD_FAILED) from error
            if loaded.tokenizer is None and loaded.info.family != "operator":
                raise ApplicationError(
                    f"{where} was loaded without a tokenizer",
                    type=MODEL_LOAD_FAILED,
                    non_retryable=True,
                )
            self._models[key] = loaded
            return loaded, time.perf_counter() - started

    def activities(self) -> list[Callable[..., Any]]:
        return [self.run_shard, self.describe_task, self.describe_worker]


Scorer = Callable[[str, list[str]], float]


def _recall_inputs(
    shard: contract.RunShardInput, task: Task, loaded: LoadedModel, strategy: StrategySpec
) -> tuple[list[Example], list[list[int]]]:
    """The shard's examples, tokenized by the model's tokenizer, and the prompts the model reads
    (left-truncated, keeping the question at the end, as the paper's harness does)."""
    if loaded.tokenizer is None or isinstance(loaded.model, Operator):
        raise ApplicationError(
            f"model {shard.model.name!r} is a kernel-level operator: it runs throughput tasks "
            f"only, not the recall task {shard.task.name!r}",
            type=INVALID_SHARD,
            non_retryable=True,
        )
    try:
        examples = task.examples(shard.example_start, shard.example_end, loaded.tokenizer, strategy)
    except (KeyError, ValueError) as error:
        raise ApplicationError(
            f"task {shard.task.name} v{shard.task.version} cannot build examples "
            f"[{shard.example_start}, {shard.example_end}): {error}",
            type=INVALID_SHARD,
            non_retryable=True,
        ) from error
    expected_ids = list(range(shard.example_start, shard.example_end))
    if [e.example_id for e in examples] != expected_ids:
        raise ApplicationError(
            f"task {shard.task.name} returned example ids "
            f"{[e.example_id for e in examples][:10]}..., expected {shard.example_start}.."
            f"{shard.example_end - 1} in order",
            type=TASK_FAILED,
            non_retryable=True,
        )
    limit = shard.generation.max_prompt_tokens
    return examples, [e.prompt_ids[-limit:] for e in examples]


def _model_info(loaded: LoadedModel, longest: int) -> contract.ModelInfo:
    """The model's facts for a shard; state after its longest input (constant for recurrent
    families, growing for attention)."""
    return contract.ModelInfo(
        family=loaded.info.family,
        parameters=int(loaded.info.parameters),
        state_bytes=int(loaded.state_bytes(longest)),
        dtype=str(loaded.info.dtype),
    )


def _perplexity_inputs(
    shard: contract.RunShardInput,
    task: PerplexityTask,
    tokenizer: Tokenizer,
) -> tuple[list[list[int]], Any]:
    """The shard's tokenized sequences and the bigram table its slices are cut by."""
    from twice_inference.tasks.slices import slice_config

    assert shard.slices is not None
    try:
        sequences = task.sequences(shard.example_start, shard.example_end, tokenizer)
        # a generated language's table is counted on first use (a minute or so): heartbeat
        table = task.bigram_table(
            slice_config(shard.slices),
            on_chunk=lambda _: activity.heartbeat(
                contract.ShardHeartbeat(examples_done=0).to_json()
            ),
        )
    except (FileNotFoundError, ValueError) as error:
        raise ApplicationError(
            f"task {shard.task.name} v{shard.task.version}: {error}",
            type=INVALID_SHARD,
            non_retryable=True,
        ) from error
    return sequences, table


def _prefill_repeats(ref: contract.StrategyRef, task_name: str) -> int:
    """How many copies of the N prompt tokens a throughput point prefills: 1, or JRT-Prompt's
    repeats. The other strategies lay out prompt text, which random ids do not have."""
    from twice_inference.tasks.strategies import parse_strategy

    try:
        strategy = parse_strategy(ref.name, ref.version, dict(ref.params))
    except ValueError as error:
        raise ApplicationError(str(error), type=INVALID_SHARD, non_retryable=True) from error
    if strategy.name not in contract.THROUGHPUT_STRATEGIES:
        raise ApplicationError(
            f"strategy {ref.name!r} is not meaningful for the throughput task {task_name!r}: its "
            f"inputs are random ids with no prompt text to lay out; use one of "
            f"{list(contract.THROUGHPUT_STRATEGIES)}",
            type=INVALID_SHARD,
            non_retryable=True,
        )
    return int(strategy.params.get("repeats", 1))


def _measure_point(
    loaded: LoadedModel,
    point: ThroughputPointSpec,
    repeats: int,
    seed: int,
    device: torch.device,
    versions: dict[str, str],
    warm: _WarmUps,
) -> tuple[contract.ThroughputPoint, Timing]:
    """One timed run of the measured thing at (point.batch_size, repeats x point.seq_len), then
    one of the attention baseline at (batch, N); each is warmed up first only if ``warm`` has
    not seen it yet. Each workload's inputs are freed before the next one is drawn."""
    batch, seq_len = point.batch_size, point.seq_len
    workload = _workload(loaded, batch, seq_len, repeats, seed)
    processed_len, implementation = workload.processed_len, workload.implementation
    measured = warm.time_once(workload.run, (implementation, batch, processed_len), device)
    del workload
    baseline = attention_baseline(batch, seq_len, device, seed)
    baseline_timing = warm.time_once(
        baseline.run, (baseline.implementation, batch, seq_len), device, shared=True
    )
    return contract.ThroughputPoint(
        example_id=point.example_id,
        seq_len=seq_len,
        batch_size=batch,
        processed_len=processed_len,
        measured=timed_prefill(implementation, measured, batch, seq_len),
        baseline=timed_prefill(baseline.implementation, baseline_timing, batch, seq_len),
        versions=versions,
    ), measured


def _model_key(ref: contract.ModelRef, device: torch.device) -> tuple[str, str, str, str]:
    """What names a loaded model in this process: the model cache's key."""
    return (ref.name, ref.revision, ref.folder or "", str(device))


@dataclass(frozen=True)
class _WarmUps:
    """Which workloads this process has warmed up (``seen``, kept on the activities object), for
    one model: a benchmark round times each point once, and only the first round of a (model,
    shape) in a process pays the warm-up; later rounds find kernels compiled and caches filled."""

    seen: set[tuple[Any, ...]]
    model: tuple[Any, ...]

    def time_once(
        self,
        fn: Callable[[], Any],
        shape: tuple[Any, ...],
        device: torch.device,
        shared: bool = False,
    ) -> Timing:
        # the attention baseline is the same code whichever model it stands beside
        key = (str(device), *shape) if shared else (*self.model, *shape)
        timing = time_callable(fn, 1, device, **({"warmup": 0} if key in self.seen else {}))
        self.seen.add(key)
        return timing


def _workload(loaded: LoadedModel, batch: int, seq_len: int, repeats: int, seed: int) -> Workload:
    """An operator's own workload, or a language model's prefill of random ids [batch,
    repeats * N] with an all-ones mask (JRT-RNN's encoder is part of its prefill)."""
    model = loaded.model
    if isinstance(model, Operator):
        return model.workload(batch, seq_len, repeats, seed)
    set_mode = getattr(model, "set_inference_mode", None)
    if set_mode is not None:
        set_mode("left_pad")  # one encode, then recurrent: the prefill the paper times
    return lm_prefill_workload(
        model, batch, repeats * seq_len, seed, str(loaded.info.dtype), loaded.compute
    )


def _measured_versions(loaded: LoadedModel) -> dict[str, str]:
    """What identifies the measured code beyond the libraries: an operator's revision, or the
    Taylor-kernel mode of a Based/JRT-RNN model (Triton kernels or PyTorch)."""
    if isinstance(loaded.model, Operator):
        return loaded.model.kernel_versions()
    if loaded.info.family in ("based", "jrt_rnn"):
        from twice_inference.ops.kernel_mode import taylor_kernel_mode

        return {"taylorKernelMode": taylor_kernel_mode()}
    return {}


def _scorer(ref: contract.ScorerRef) -> Scorer:
    """The scorer the shard names, at the version it names: the version is part of the cell key,
    so scoring with another one would file results under the wrong key."""
    from twice_inference.tasks.scoring import SCORER_VERSIONS, get_scorer

    implemented = SCORER_VERSIONS.get(ref.name)
    if implemented != ref.version:
        raise ApplicationError(
            f"scorer {ref.name!r} version {ref.version} requested, this worker implements "
            f"version {implemented}",
            type=INVALID_SHARD,
            non_retryable=True,
        )
    return get_scorer(ref.name)


def _score(scorer: Scorer, prediction: str, example: Example) -> float:
    try:
        return float(scorer(prediction, list(example.gold)))
    except ValueError as error:  # e.g. an empty gold, which would match everything
        raise ApplicationError(
            f"example {example.example_id}: cannot score: {error}",
            type=TASK_FAILED,
            non_retryable=True,
        ) from error


@contextmanager
def _typed_gpu_errors() -> Iterator[None]:
    """Turns a CUDA out-of-memory into a typed, retryable failure (another attempt may land on a
    larger GPU, or the orchestrator may shrink the batch)."""
    try:
        yield
    except torch.OutOfMemoryError as error:
        torch.cuda.empty_cache()
        raise ApplicationError(f"out of GPU memory: {error}", type=GPU_OUT_OF_MEMORY) from error
