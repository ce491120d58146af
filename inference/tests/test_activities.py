"""run_shard, describe_task and describe_worker end to end in Temporal's ActivityEnvironment, with
the conftest recurrent model and key-value task injected in place of the registries: outputs obey
the contract, heartbeats carry progress, results are deterministic, bad payloads fail for good. The
recall test at the end injects nothing: a random-weight debug model on the FDA fixture, every part
real; so do the throughput-shard tests after it (debug models and CPU operators, tiny sizes)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import re
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import TEST_WORDS, KeyValueRecallTask, TinyRecurrentLM, WordTokenizer
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from twice_inference import activities as activities_module
from twice_inference import contract
from twice_inference.activities import InferenceActivities, prompt_text
from twice_inference.engine.naive import naive_greedy_generate
from twice_inference.protocols import StrategySpec
from twice_inference.tasks.scoring import contains, exact
from twice_inference.tasks.throughput import PrefillThroughputTask


@dataclass
class LoadedTestModel:
    model: TinyRecurrentLM
    tokenizer: WordTokenizer
    info: SimpleNamespace

    def state_bytes(self, prompt_len: int) -> int:
        return self.model.state_size_bytes(1, prompt_len)

    def compute(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()


class Registries:
    """Records calls so tests can see what the activities asked the registries for."""

    def __init__(self) -> None:
        self.loads: list[tuple[str, str, str]] = []
        self.folders: list[str | None] = []
        self.slice_calls: list[tuple[list[int], list[float]]] = []

    def load_model(
        self, name: str, revision: str, device: str, *, folder: str | None = None
    ) -> LoadedTestModel:
        self.folders.append(folder)
        if name == "broken":
            raise RuntimeError("kernels for this family are not installed")
        if name != "tiny":
            raise KeyError(f"unknown model {name!r}")
        self.loads.append((name, revision, device))
        model = TinyRecurrentLM(vocab_size=len(TEST_WORDS) + 2, dim=16, seed=int(revision))
        info = SimpleNamespace(
            family=model.family,
            parameters=sum(p.numel() for p in model.parameters()),
            dtype="float64",
        )
        return LoadedTestModel(model, WordTokenizer(TEST_WORDS), info)

    def build_task(self, name: str, version: int, params: dict[str, Any]) -> KeyValueRecallTask:
        if name != KeyValueRecallTask.name:
            raise KeyError(f"unknown task {name!r}")
        return KeyValueRecallTask(params)

    def slice_sums(
        self, prompt_ids: list[int], nll: list[float], settings: contract.SliceSettings
    ) -> list[dict[str, Any]]:
        # A simple honest split: tokens whose bigram already occurred in the prompt vs the rest.
        self.slice_calls.append((prompt_ids, nll))
        seen: set[tuple[int, int]] = set()
        sums = {"ar_hit": [0.0, 0], "other": [0.0, 0]}
        for position in range(1, len(prompt_ids)):
            bigram = (prompt_ids[position - 1], prompt_ids[position])
            bucket = sums["ar_hit" if bigram in seen else "other"]
            bucket[0] += nll[position - 1]
            bucket[1] += 1
            seen.add(bigram)
        return [{"slice": k, "nllSum": v[0], "tokenCount": v[1]} for k, v in sums.items()]


SHARD: dict[str, Any] = {
    "cellKey": "d" * 64,
    "shardIndex": 1,
    "exampleStart": 5,
    "exampleEnd": 12,
    "model": {"name": "tiny", "revision": "3"},
    "task": {"name": "kv_recall_test", "version": 1, "params": {"numExamples": 20, "seed": 7}},
    "strategy": {"name": "jrt_prompt", "version": 1, "params": {"repeats": 2}},
    "generation": {"maxNewTokens": 6, "stopAtNewline": True, "batchSize": 3, "maxPromptTokens": 12},
    "scorer": {"name": "contains", "version": 1},
    "slices": {
        "frequencyThreshold": 10,
        "frequencyBinEdges": [0],
        "distanceBinEdges": [1],
        "bigramCounts": None,
    },
    "device": "cpu",
}


def _run(activities: InferenceActivities, payload: Any, heartbeats: list[Any] | None = None) -> Any:
    env = ActivityEnvironment()
    if heartbeats is not None:
        env.on_heartbeat = lambda *details: heartbeats.append(details)
    return env.run(activities.run_shard, payload)


def _activities(registries: Registries, **kwargs: Any) -> InferenceActivities:
    return InferenceActivities(
        device="cpu",
        load_model=registries.load_model,
        build_task=registries.build_task,
        slice_sums=registries.slice_sums,
        **kwargs,
    )


def test_a_checkpoint_folder_reaches_the_loader_and_keys_the_resident_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWICE_DATA_ROOTS", "/data")
    registries = Registries()
    activities = _activities(registries)
    _run(activities, SHARD)
    in_folder = copy.deepcopy(SHARD)
    in_folder["model"]["folder"] = "/data/runs/7/latest"
    _run(activities, in_folder)
    _run(activities, in_folder)
    # the catalog model was loaded plainly, the folder's once (then resident)
    assert registries.folders == [None, "/data/runs/7/latest"]
    outside = copy.deepcopy(SHARD)
    outside["model"]["folder"] = "/etc"
    with pytest.raises(ApplicationError, match=r"checkpoints\.tiny\.folder '/etc' is outside"):
        _run(activities, outside)
    assert registries.folders == [None, "/data/runs/7/latest"], "refused before any load"
    bad = copy.deepcopy(SHARD)
    bad["model"]["folder"] = ""
    with pytest.raises(
        ApplicationError,
        match=r"invalid RunShardInput: model\.folder\S*: String should have at least 1",
    ):
        _run(activities, bad)


def test_run_shard_end_to_end() -> None:
    registries = Registries()
    heartbeats: list[Any] = []
    output = _run(_activities(registries), SHARD, heartbeats)

    parsed = contract.RunShardOutput.model_validate(output)
    assert parsed.to_json() == output
    assert parsed.cell_key == SHARD["cellKey"] and parsed.shard_index == 1
    assert [e.example_id for e in parsed.examples] == list(range(5, 12))

    # Every record is what the task, tokenizer and a naive decode of the truncated prompt give.
    loaded = registries.load_model("tiny", "3", "cpu")
    task = KeyValueRecallTask(SHARD["task"]["params"])
    strategy = contract.StrategyRef.model_validate(SHARD["strategy"])

    examples = task.examples(
        5, 12, loaded.tokenizer, StrategySpec(strategy.name, strategy.version, strategy.params)
    )
    prompts = [e.prompt_ids[-12:] for e in examples]
    assert any(len(e.prompt_ids) > 12 for e in examples), "fixture should exercise truncation"
    expected = naive_greedy_generate(
        loaded.model, prompts, max_new_tokens=6, stop_id=loaded.tokenizer.newline_id
    )
    rows = zip(parsed.examples, prompts, examples, expected, strict=True)
    for record, prompt, example, tokens in rows:
        assert record.prompt_tokens == len(prompt) <= 12
        assert (
            record.prompt_digest
            == hashlib.sha256(json.dumps(prompt, separators=(",", ":")).encode()).hexdigest()
        )
        # the text of exactly the ids the digest is over (after truncation)
        assert record.prompt == loaded.tokenizer.decode(prompt)
        assert record.prediction == loaded.tokenizer.decode(tokens)
        assert record.generated_tokens == len(tokens)
        assert record.gold == example.gold
        assert record.score == contains(record.prediction, example.gold)

    # Batches of 3 over 7 examples: generation beats 3, 6, 7; the NLL pass keeps beating 7.
    done = [h[0]["examplesDone"] for h in heartbeats]
    assert done[:3] == [3, 6, 7] and set(done[3:]) == {7}
    assert parsed.timing.batches == 3
    assert parsed.timing.prefill_tokens == sum(len(p) for p in prompts)
    assert parsed.timing.load_seconds > 0

    # Slice sums are the per-example sums added up, over the truncated prompts' NLL.
    assert [p for p, _ in registries.slice_calls] == prompts
    assert all(len(n) == len(p) - 1 for p, n in registries.slice_calls)
    by_name = {s.slice: s for s in parsed.slices}
    assert sorted(by_name) == ["ar_hit", "other"]
    assert sum(s.token_count for s in parsed.slices) == sum(len(p) - 1 for p in prompts)
    assert sum(s.nll_sum for s in parsed.slices) == pytest.approx(
        sum(sum(n) for _, n in registries.slice_calls)
    )

    assert parsed.model.family == "tiny_recurrent" and parsed.model.state_bytes == 16 * 8
    assert parsed.worker.device == "cpu"


def test_run_shard_is_deterministic_and_reuses_the_loaded_model() -> None:
    registries = Registries()
    activities = _activities(registries)
    first = _run(activities, SHARD)
    second = _run(activities, SHARD)
    assert len(registries.loads) == 1
    assert second["timing"]["loadSeconds"] == 0.0
    strip = lambda out: {k: v for k, v in out.items() if k not in ("timing", "worker")}  # noqa: E731
    assert strip(first) == strip(second)
    # A fresh process (new activities object) gives the same results too.
    assert strip(_run(_activities(Registries()), SHARD)) == strip(first)


def test_a_prefetched_shard_prepares_while_another_computes() -> None:
    """Two shards at once on one compute slot: the second builds its examples while the first
    holds the device, then waits for the slot (queue time) and computes after it; the results
    are those of running them one after the other."""
    registries = Registries()
    second_shard = {**SHARD, "shardIndex": 12, "exampleStart": 12, "exampleEnd": 15}
    building = threading.Event()
    built_while_computing: list[bool] = []

    class WatchedTask(KeyValueRecallTask):
        def examples(self, start: int, end: int, tokenizer: Any, strategy: Any) -> Any:
            if start == second_shard["exampleStart"]:
                building.set()
            return super().examples(start, end, tokenizer, strategy)

    activities = _activities(registries)
    activities._build_task = lambda name, version, params: WatchedTask(params)
    _run(activities, {**SHARD, "exampleStart": 0, "exampleEnd": 1})  # the model is resident
    computing = threading.Event()

    def first_heartbeat(*_: Any) -> None:
        # the first shard's first batch is done and it still holds the device
        if not computing.is_set():
            computing.set()
            built_while_computing.append(building.wait(timeout=30))

    outputs: dict[str, Any] = {}

    def run_first() -> None:
        env = ActivityEnvironment()
        env.on_heartbeat = first_heartbeat
        outputs["first"] = env.run(activities.run_shard, SHARD)

    first = threading.Thread(target=run_first)
    first.start()
    assert computing.wait(timeout=30)
    outputs["second"] = _run(activities, second_shard)
    first.join(timeout=60)

    assert built_while_computing == [True]
    strip = lambda out: {k: v for k, v in out.items() if k not in ("timing", "worker")}  # noqa: E731
    alone = _activities(Registries())
    assert strip(outputs["first"]) == strip(_run(alone, SHARD))
    assert strip(outputs["second"]) == strip(_run(alone, second_shard))
    second = outputs["second"]["timing"]
    # it waited for the first shard's compute, and built its data before the device was free
    assert second["queueSeconds"] > 0 and second["dataSeconds"] > 0
    assert second["loadSeconds"] == 0.0


def test_built_tasks_are_reused_across_shards() -> None:
    registries = Registries()
    builds: list[dict[str, Any]] = []

    def build_task(name: str, version: int, params: dict[str, Any]) -> KeyValueRecallTask:
        builds.append(params)
        return registries.build_task(name, version, params)

    activities = _activities(registries)
    activities._build_task = build_task
    other_seed = {**SHARD, "task": {**SHARD["task"], "params": {"numExamples": 20, "seed": 8}}}
    for payload in (SHARD, {**SHARD, "shardIndex": 2}, other_seed, SHARD):
        _run(activities, payload)
    assert [b["seed"] for b in builds] == [7, 8]


def test_every_phase_is_timed() -> None:
    output = _run(_activities(Registries()), SHARD)
    timing = output["timing"]
    for phase in ("dataSeconds", "loadSeconds", "prefillSeconds", "decodeSeconds"):
        assert timing[phase] > 0, phase
    # slices were asked for: their NLL pass is timed apart from the generation's prefill
    assert timing["nllSeconds"] > 0 and timing["scoringSeconds"] > 0
    assert timing["queueSeconds"] >= 0
    without_slices = _run(_activities(Registries()), {**SHARD, "slices": None})
    assert without_slices["timing"]["nllSeconds"] < timing["nllSeconds"]


def test_model_cache_evicts_least_recently_used() -> None:
    registries = Registries()
    activities = _activities(registries, model_cache_size=1)
    other_model = {**SHARD, "model": {"name": "tiny", "revision": "4"}, "slices": None}
    for payload in (SHARD, other_model, SHARD):
        _run(activities, payload)
    assert [load[1] for load in registries.loads] == ["3", "4", "3"]


def test_no_slices_requested_means_no_nll_pass() -> None:
    registries = Registries()
    output = _run(_activities(registries), {**SHARD, "slices": None})
    assert output["slices"] == [] and registries.slice_calls == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cellKey": "not-a-digest"}, "cellKey"),
        ({"exampleStart": -1}, "exampleStart"),
        ({"exampleEnd": 5}, "exampleEnd"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_shard_fails_without_retry_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApplicationError) as caught:
        _run(_activities(Registries()), {**SHARD, **change})
    assert caught.value.type == "InvalidShard" and caught.value.non_retryable
    assert field in caught.value.message


def test_unknown_model_and_task_are_not_retried() -> None:
    with pytest.raises(ApplicationError) as caught:
        _run(_activities(Registries()), {**SHARD, "model": {"name": "nope", "revision": "1"}})
    assert caught.value.type == "ModelLoadFailed" and caught.value.non_retryable
    with pytest.raises(ApplicationError) as caught:
        _run(_activities(Registries()), {**SHARD, "task": {**SHARD["task"], "name": "nope"}})
    assert caught.value.type == "InvalidShard" and caught.value.non_retryable
    out_of_range = copy.deepcopy(SHARD)
    out_of_range["exampleEnd"] = 25
    with pytest.raises(ApplicationError) as caught:
        _run(_activities(Registries()), out_of_range)
    assert caught.value.type == "InvalidShard" and "[5, 25)" in caught.value.message


def test_scorer_named_by_the_shard_is_used() -> None:
    output = _run(_activities(Registries()), {**SHARD, "scorer": {"name": "exact", "version": 1}})
    for record in output["examples"]:
        assert record["score"] == exact(record["prediction"], record["gold"])
    with pytest.raises(ApplicationError) as caught:
        _run(_activities(Registries()), {**SHARD, "scorer": {"name": "exact", "version": 9}})
    assert caught.value.type == "InvalidShard" and "version 9" in caught.value.message


def test_unexpected_load_failure_is_retryable() -> None:
    with pytest.raises(ApplicationError) as caught:
        _run(_activities(Registries()), {**SHARD, "model": {"name": "broken", "revision": "1"}})
    assert caught.value.type == "ModelLoadFailed" and not caught.value.non_retryable
    assert "kernels" in caught.value.message


def test_cancellation_between_batches() -> None:
    env = ActivityEnvironment()
    heartbeats: list[Any] = []

    def cancel_on_first(*details: Any) -> None:
        heartbeats.append(details)
        env.cancel()

    env.on_heartbeat = cancel_on_first
    with pytest.raises(CancelledError):
        env.run(_activities(Registries()).run_shard, SHARD)
    assert len(heartbeats) == 1


def test_describe_task_and_worker() -> None:
    env = ActivityEnvironment()
    activities = _activities(Registries())
    described = env.run(activities.describe_task, {"task": SHARD["task"]})
    parsed = contract.DescribeTaskOutput.model_validate(described)
    assert parsed.num_examples == 20
    assert parsed.data_digest == KeyValueRecallTask(SHARD["task"]["params"]).data_digest()
    with pytest.raises(ApplicationError) as caught:
        env.run(activities.describe_task, {"task": {**SHARD["task"], "version": 0}})
    assert caught.value.type == "InvalidShard" and "task.version" in caught.value.message

    info = contract.WorkerInfo.model_validate(env.run(activities.describe_worker))
    assert info.device == "cpu" and info.worker_version == "0.1.0" and info.pid > 0


def test_default_registries_are_imported_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without injection the activities call twice_inference.{models,tasks}.registry and
    tasks.slices by these exact names and signatures."""
    registries = Registries()
    for module_name, attribute, function in (
        ("twice_inference.models.registry", "load_model", registries.load_model),
        ("twice_inference.tasks.registry", "build_task", registries.build_task),
        ("twice_inference.tasks.slices", "slice_sums", registries.slice_sums),
    ):
        module = types.ModuleType(module_name)
        setattr(module, attribute, function)
        monkeypatch.setitem(sys.modules, module_name, module)
    output = _run(InferenceActivities(device="cpu"), SHARD)
    contract.RunShardOutput.model_validate(output)
    assert registries.loads == [("tiny", "3", "cpu")] and registries.slice_calls


def test_real_task_registry_tokenizer_and_slices() -> None:
    """Everything but the weights is the real thing: the mqar task, the synthetic tokenizer, the
    contains scorer and the slice sums (the zoo's trained weights are not needed to check the
    plumbing between them)."""
    from twice_inference.tokenizers import load_tokenizer

    tokenizer = load_tokenizer("synthetic-v1")
    model = TinyRecurrentLM(vocab_size=tokenizer.vocab_size, dim=8, seed=1)
    info = SimpleNamespace(family=model.family, parameters=1, dtype="float64")
    loaded = LoadedTestModel(model, tokenizer, info)  # type: ignore[arg-type]
    activities = InferenceActivities(device="cpu", load_model=lambda *_: loaded)
    shard = {
        **SHARD,
        "task": {"name": "mqar", "version": 1, "params": {"numExamples": 10, "seed": 0}},
        "strategy": {"name": "jrt_prompt", "version": 1, "params": {}},
        "generation": {**SHARD["generation"], "maxPromptTokens": 2000},
        "exampleStart": 2,
        "exampleEnd": 6,
    }
    output = contract.RunShardOutput.model_validate(_run(activities, shard))
    assert [e.example_id for e in output.examples] == [2, 3, 4, 5]
    slices = {s.slice: s for s in output.slices}
    # jrt_prompt repeats the context, so the second copy is full of repeated bigrams: AR hits.
    assert slices["ar_hit"].token_count > 0
    scored = sum(e.prompt_tokens - 1 for e in output.examples)
    assert slices["ar_hit"].token_count + slices["other"].token_count == scored

    described = ActivityEnvironment().run(activities.describe_task, {"task": shard["task"]})
    assert described["numExamples"] == 10 and len(described["dataDigest"]) == 64


def test_debug_model_on_a_real_recall_task_end_to_end() -> None:
    """No injection at all: the registry's random-weight debug-based-bytes (bytes-v1 tokenizer),
    the FDA fixture through datasets.py, jrt_prompt, the real scorer and slice sums."""
    fixture = Path(__file__).parent / "fixtures" / "recall" / "hazyresearch" / "based-fda"
    shard = {
        **SHARD,
        "exampleStart": 0,
        "exampleEnd": 3,
        "model": {"name": "debug-based-bytes", "revision": "random:seed=0"},
        "task": {
            "name": "fda",
            "version": 2,
            "params": {"dataDir": str(fixture), "contextTokens": 200},
        },
        "strategy": {"name": "jrt_prompt", "version": 1, "params": {}},
        "generation": {
            "maxNewTokens": 8,
            "stopAtNewline": True,
            "batchSize": 2,
            "maxPromptTokens": 4000,
        },
    }
    activities = InferenceActivities(device="cpu")
    output = contract.RunShardOutput.model_validate(_run(activities, shard))

    assert [e.example_id for e in output.examples] == [0, 1, 2]  # the fixture's three rows
    for record in output.examples:
        assert record.score in (0.0, 1.0) and record.gold
        assert record.score == contains(record.prediction, record.gold)
        assert 0 < record.generated_tokens <= 8
        assert record.prompt_tokens > 200  # jrt_prompt: the 200-byte window, twice
    assert output.model.family == "based" and output.model.dtype == "float32"

    slices = {s.slice: s for s in output.slices}
    assert {"ar_hit", "other", "ar_hit/dist:1-inf"} <= set(slices)
    assert all(math.isfinite(s.nll_sum) and s.nll_sum >= 0 for s in slices.values())
    # ar_hit and other split the scored tokens; jrt_prompt's second copy is full of AR hits.
    scored = sum(e.prompt_tokens - 1 for e in output.examples)
    assert slices["ar_hit"].token_count + slices["other"].token_count == scored
    assert slices["ar_hit"].token_count > scored / 4
    # Near-uniform random logits: about ln(257) nats per byte, whatever the slice.
    mean_nll = (slices["ar_hit"].nll_sum + slices["other"].nll_sum) / scored
    assert abs(mean_nll - math.log(257)) < 0.5

    with pytest.raises(ApplicationError) as caught:
        _run(activities, {**shard, "model": {**shard["model"], "revision": "main"}})
    assert caught.value.type == "ModelLoadFailed" and caught.value.non_retryable
    assert "random:seed=0" in caught.value.message


# ---- throughput shards (prefill_throughput): real registries, tiny sizes, CPU ------------------

THROUGHPUT_SHARD: dict[str, Any] = {
    **SHARD,
    "exampleStart": 1,
    "exampleEnd": 3,
    "model": {"name": "debug-based-bytes", "revision": "random:seed=0"},
    "task": {
        "name": "prefill_throughput",
        "version": 1,
        "params": {"lengths": [16, 32], "batchSizes": [1, 2], "runs": 10, "seed": 3},
    },
    "strategy": {"name": "default", "version": 1, "params": {}},
    "scorer": {"name": "none", "version": 1},
    "slices": None,
}


def _throughput(
    model: str, revision: str, strategy: str = "default", heartbeats: list[Any] | None = None
) -> contract.RunShardOutput:
    shard = {
        **THROUGHPUT_SHARD,
        "model": {"name": model, "revision": revision},
        "strategy": {"name": strategy, "version": 1, "params": {}},
    }
    output = _run(InferenceActivities(device="cpu"), shard, heartbeats)
    parsed = contract.RunShardOutput.model_validate(output)
    assert parsed.to_json() == output
    return parsed


def _check_points(output: contract.RunShardOutput, processed: list[int]) -> None:
    """Points 1 and 2 of lengths [16, 32] x batchSizes [1, 2]: (16, 2) and (32, 1)."""
    assert output.examples == [] and output.slices == []
    points = output.measurements
    assert [(p.example_id, p.seq_len, p.batch_size) for p in points] == [(1, 16, 2), (2, 32, 1)]
    assert [p.processed_len for p in points] == processed
    for point in points:
        for timed in (point.measured, point.baseline):
            # one round: each point timed once (the rounds are the cell's other shards)
            assert timed.runs == 1 and timed.run_seconds == [timed.median_seconds]
            assert 0 < timed.min_seconds == timed.median_seconds
            # the prompt's tokens, not what was processed: reading twice costs throughput
            expected = point.batch_size * point.seq_len / timed.median_seconds
            assert timed.tokens_per_second == pytest.approx(expected)
        assert point.baseline.implementation == "sdpa-math-cpu"
        assert point.versions["torch"] and point.versions["python"]
    timing = output.timing
    assert timing.batches == 2 and timing.decode_seconds == 0.0
    assert timing.prefill_tokens == sum(p.batch_size * p.processed_len for p in points)
    assert 0 < timing.prefill_seconds


@pytest.mark.parametrize(
    ("model", "strategy", "processed"),
    [
        ("debug-based-bytes", "default", [16, 32]),
        ("debug-based-bytes", "jrt_prompt", [32, 64]),  # the context twice
        ("debug-jrt-bytes", "jrt_prompt", [32, 64]),  # its own prefill, encoder included
    ],
)
def test_throughput_shard_times_a_language_models_prefill(
    model: str, strategy: str, processed: list[int]
) -> None:
    heartbeats: list[Any] = []
    output = _throughput(model, "random:seed=0", strategy, heartbeats)
    _check_points(output, processed)
    family = "based" if model == "debug-based-bytes" else "jrt_rnn"
    assert {p.measured.implementation for p in output.measurements} == {
        f"{family}-prefill-float32-cpu"
    }
    assert output.measurements[0].versions["taylorKernelMode"] in ("auto", "off", "interpreter")
    assert output.model.family == family and output.model.parameters > 0
    assert [h[0]["examplesDone"] for h in heartbeats] == [1, 2]  # one per point


@pytest.mark.parametrize(
    ("model", "processed", "implementation"),
    [
        ("op-based-torch", [16, 32], "based-torch-chunked-fp32-cpu"),
        ("op-prefix-torch", [16 + 8, 32 + 16], "prefix-torch-chunked-fp32-cpu"),
    ],
)
def test_throughput_shard_times_an_operator(
    model: str, processed: list[int], implementation: str
) -> None:
    op = model.removeprefix("op-").replace("-", "_")
    output = _throughput(model, f"operator:{op}@v1")
    _check_points(output, processed)
    assert {p.measured.implementation for p in output.measurements} == {implementation}
    assert output.measurements[0].versions["operator"] == f"operator:{op}@v1"
    assert output.model == contract.ModelInfo(
        family="operator", parameters=0, state_bytes=16 * 273 * 65 * 4, dtype="bfloat16"
    )


def test_triton_operator_on_a_cpu_worker_is_retried_elsewhere() -> None:
    shard = {
        **THROUGHPUT_SHARD,
        "model": {"name": "op-based-triton", "revision": "operator:based_triton@v1"},
    }
    with pytest.raises(ApplicationError) as caught:
        _run(InferenceActivities(device="cpu"), shard)
    assert caught.value.type == "DeviceUnavailable" and not caught.value.non_retryable
    assert "needs a CUDA device" in caught.value.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"strategy": {"name": "question_first", "version": 1, "params": {}}},
            "strategy 'question_first' is not meaningful for the throughput task",
        ),
        (
            {"strategy": {"name": "jrt_prompt", "version": 1, "params": {"repeats": 1}}},
            "repeats",
        ),
        ({"scorer": {"name": "exact", "version": 1}}, "its scorer is 'none', got 'exact'"),
        ({"exampleEnd": 41}, r"point range \[1, 41\) is outside \[0, 40\)"),
        (
            {"model": {"name": "op-based-torch", "revision": "operator:based_torch@v2"}},
            "only revision is 'operator:based_torch@v1'",
        ),
    ],
)
def test_bad_throughput_shards_fail_for_good(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        _run(InferenceActivities(device="cpu"), {**THROUGHPUT_SHARD, **change})
    assert caught.value.non_retryable
    assert caught.value.type in ("InvalidShard", "ModelLoadFailed")
    assert re.search(message, caught.value.message), caught.value.message


def test_recall_task_on_an_operator_is_refused() -> None:
    shard = {
        **THROUGHPUT_SHARD,
        "model": {"name": "op-based-torch", "revision": "operator:based_torch@v1"},
        "task": {"name": "mqar", "version": 1, "params": {"numExamples": 4, "seed": 0}},
        "scorer": {"name": "exact", "version": 1},
    }
    with pytest.raises(ApplicationError) as caught:
        _run(InferenceActivities(device="cpu"), shard)
    assert caught.value.type == "InvalidShard" and caught.value.non_retryable
    assert "'op-based-torch'" in caught.value.message and "'mqar'" in caught.value.message
    # and a recall task never takes the measurement tasks' scorer
    shard["model"] = {"name": "debug-based-bytes", "revision": "random:seed=0"}
    with pytest.raises(ApplicationError, match="scorer 'none' is for measurement tasks"):
        _run(InferenceActivities(device="cpu"), {**shard, "scorer": {"name": "none", "version": 1}})


def test_throughput_rounds_warm_up_once_per_model_and_shape_in_a_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Round 2 of the same points times them without a warm-up, another model warms up its own
    shapes (the baseline's are warm already), and a fresh process warms up again."""
    warmups: list[bool] = []
    real = activities_module.time_callable

    def recording(fn: Any, runs: int, device: Any, **kwargs: Any) -> Any:
        assert runs == 1
        warmups.append(kwargs.get("warmup", 1) > 0)
        return real(fn, runs, device, **kwargs)

    monkeypatch.setattr(activities_module, "time_callable", recording)
    worker = InferenceActivities(device="cpu", model_cache_size=2)
    # (measured, baseline) per point, two points a round
    _run(worker, THROUGHPUT_SHARD)
    assert warmups == [True, True, True, True]
    second_round = {**THROUGHPUT_SHARD, "exampleStart": 5, "exampleEnd": 7, "shardIndex": 5}
    output = contract.RunShardOutput.model_validate(_run(worker, second_round))
    assert [(p.example_id, p.seq_len, p.batch_size) for p in output.measurements] == [
        (5, 16, 2),
        (6, 32, 1),
    ]
    assert warmups[4:] == [False, False, False, False]
    other = {**THROUGHPUT_SHARD, "model": {"name": "debug-jrt-bytes", "revision": "random:seed=0"}}
    _run(worker, other)
    assert warmups[8:] == [True, False, True, False]
    _run(InferenceActivities(device="cpu"), second_round)
    assert warmups[12:] == [True, True, True, True]


def test_describe_throughput_task_counts_its_points() -> None:
    described = ActivityEnvironment().run(
        InferenceActivities(device="cpu").describe_task, {"task": THROUGHPUT_SHARD["task"]}
    )
    task = PrefillThroughputTask(THROUGHPUT_SHARD["task"]["params"])
    # 4 points x 10 rounds
    assert described == {"numExamples": 40, "dataDigest": task.data_digest()}


def test_prompt_text_keeps_a_long_prompts_tail_within_the_contract() -> None:
    assert prompt_text("short") == "short"
    decoded = "a" * contract.PROMPT_CHARS + "tail"
    kept = prompt_text(decoded)
    assert len(kept) <= contract.PROMPT_CHARS and kept.endswith("atail")
    cut = int(kept[1 : kept.index(" ")])
    assert kept.startswith(f"[{cut} characters cut] ")
    assert len(decoded) - cut == len(kept) - len(f"[{cut} characters cut] ")
