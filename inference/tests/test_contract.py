"""The pydantic contract mirrors workflows/contract.ts: hand-written payloads pass or fail as zod
would, and, once the lead has exported ``contract.schema.json`` from zod, every cross-language model
has the same properties, required keys and constraints as its JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from twice_inference import contract

SCHEMA_PATH = Path(contract.__file__).with_name("contract.schema.json")
DIGEST = "a" * 64
MAX_SAFE_INTEGER = 2**53 - 1

RUN_SHARD_INPUT: dict[str, Any] = {
    "cellKey": DIGEST,
    "shardIndex": 0,
    "exampleStart": 0,
    "exampleEnd": 8,
    "model": {"name": "zoo/based-tiny", "revision": "b" * 64},
    "task": {"name": "mqar", "version": 1, "params": {"numKvPairs": 4, "seed": 0}},
    "strategy": {"name": "jrt_prompt", "version": 1, "params": {"repeats": 2}},
    "generation": {
        "maxNewTokens": 48,
        "stopAtNewline": True,
        "batchSize": 32,
        "maxPromptTokens": 2000,
    },
    "scorer": {"name": "contains", "version": 1},
    "slices": {
        "frequencyThreshold": 1000,
        "frequencyBinEdges": [0, 10, 100],
        "distanceBinEdges": [1, 2, 4],
        "bigramCounts": None,
    },
    "device": "auto",
}

WORKER_INFO: dict[str, Any] = {
    "workerVersion": "0.1.0",
    "python": "3.11.7",
    "torch": "2.11.0",
    "device": "cpu",
    "gpuName": None,
    "driver": None,
    "cuda": None,
    "hostname": "host",
    "pid": 42,
}

RUN_SHARD_OUTPUT: dict[str, Any] = {
    "cellKey": DIGEST,
    "shardIndex": 3,
    "examples": [
        {
            "exampleId": 7,
            "promptDigest": "c" * 64,
            "prediction": " Paris",
            "gold": ["Paris"],
            "score": 1.0,
            "promptTokens": 12,
            "generatedTokens": 1,
        }
    ],
    "measurements": [],
    "slices": [{"slice": "ar_hit", "nllSum": 3.5, "tokenCount": 2}],
    "timing": {
        "queueSeconds": 0.03,
        "dataSeconds": 0.004,
        "loadSeconds": 0.5,
        "prefillSeconds": 0.01,
        "decodeSeconds": 0.02,
        "nllSeconds": 0.01,
        "scoringSeconds": 0.002,
        "prefillTokens": 12,
        "batches": 1,
    },
    "worker": WORKER_INFO,
    "model": {"family": "based", "parameters": 1000, "stateBytes": 4096, "dtype": "float32"},
}

TIMED_PREFILL: dict[str, Any] = {
    "implementation": "based-triton",
    "medianSeconds": 0.0045,
    "minSeconds": 0.0044,
    "runs": 10,
    "runSeconds": [0.0045, 0.0044, 0.0046, 0.0045, 0.0047, 0.0045, 0.0044, 0.0046, 0.0045, 0.0048],
    "tokensPerSecond": 16 * 2048 / 0.0045,
}

THROUGHPUT_OUTPUT: dict[str, Any] = {
    **RUN_SHARD_OUTPUT,
    "examples": [],
    "slices": [],
    "measurements": [
        {
            "exampleId": 0,
            "seqLen": 2048,
            "batchSize": 16,
            "processedLen": 4096,
            "measured": TIMED_PREFILL,
            "baseline": {**TIMED_PREFILL, "implementation": "sdpa-flash"},
            "versions": {"torch": "2.11.0", "gpu": "NVIDIA H200"},
        }
    ],
}

VALID_PAYLOADS: dict[str, list[dict[str, Any]]] = {
    "RunShardInput": [
        RUN_SHARD_INPUT,
        {**RUN_SHARD_INPUT, "slices": None, "device": "cuda"},
        {
            **RUN_SHARD_INPUT,
            "task": {"name": "prefill_throughput", "version": 1, "params": {"lengths": [2048]}},
            "scorer": {"name": "none", "version": 1},
            "slices": None,
        },
        # a spec's checkpoint folder: the path travels beside its content revision
        {
            **RUN_SHARD_INPUT,
            "model": {
                "name": "in-training",
                "revision": f"folder:zoo-attn-tiny@{DIGEST}",
                "folder": "/data/runs/7/latest",
            },
        },
    ],
    "RunShardOutput": [
        RUN_SHARD_OUTPUT,
        {**RUN_SHARD_OUTPUT, "examples": [], "slices": []},
        THROUGHPUT_OUTPUT,
        # a worker older than per-run seconds sends only the median and the fastest run
        {
            **THROUGHPUT_OUTPUT,
            "measurements": [
                {
                    **THROUGHPUT_OUTPUT["measurements"][0],
                    "measured": {k: v for k, v in TIMED_PREFILL.items() if k != "runSeconds"},
                }
            ],
        },
    ],
    "ShardHeartbeat": [{"examplesDone": 0}, {"examplesDone": 17}],
    "WorkerInfo": [
        WORKER_INFO,
        {**WORKER_INFO, "device": "cuda", "gpuName": "H200", "driver": "570.1", "cuda": "13.0"},
    ],
    "DescribeTaskInput": [{"task": {"name": "squad", "version": 2, "params": {}}}],
    "DescribeTaskOutput": [{"numExamples": 0, "dataDigest": DIGEST}],
}


def _with(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


# (schema, payload, error location pydantic must report, whether JSON Schema can also catch it)
INVALID_PAYLOADS = [
    ("RunShardInput", {**RUN_SHARD_INPUT, "cellkey": DIGEST}, ("cellkey",), True),
    (
        "RunShardInput",
        _with(RUN_SHARD_INPUT, ("model", "weights"), "x"),
        ("model", "weights"),
        True,
    ),
    ("RunShardInput", {**RUN_SHARD_INPUT, "cellKey": "A" * 64}, ("cellKey",), True),
    ("RunShardInput", {**RUN_SHARD_INPUT, "cellKey": "a" * 63}, ("cellKey",), True),
    ("RunShardInput", {**RUN_SHARD_INPUT, "shardIndex": -1}, ("shardIndex",), True),
    ("RunShardInput", {**RUN_SHARD_INPUT, "exampleStart": -2}, ("exampleStart",), True),
    ("RunShardInput", {**RUN_SHARD_INPUT, "shardIndex": "1"}, ("shardIndex",), True),
    ("RunShardInput", {**RUN_SHARD_INPUT, "exampleStart": 8}, ("exampleEnd",), False),
    ("RunShardInput", {**RUN_SHARD_INPUT, "device": "tpu"}, ("device",), True),
    ("RunShardInput", _with(RUN_SHARD_INPUT, ("scorer", "name"), "f1"), ("scorer", "name"), True),
    (
        "RunShardInput",
        _with(RUN_SHARD_INPUT, ("generation", "batchSize"), 0),
        ("generation", "batchSize"),
        True,
    ),
    (
        "RunShardInput",
        _with(RUN_SHARD_INPUT, ("slices", "distanceBinEdges"), []),
        ("slices", "distanceBinEdges"),
        True,
    ),
    (
        "RunShardInput",
        {k: v for k, v in RUN_SHARD_INPUT.items() if k != "slices"},
        ("slices",),
        True,
    ),
    (
        "RunShardOutput",
        _with(RUN_SHARD_OUTPUT, ("examples", 0, "score"), 1.5),
        ("examples", 0, "score"),
        True,
    ),
    (
        "RunShardOutput",
        _with(RUN_SHARD_OUTPUT, ("examples", 0, "promptDigest"), "zz"),
        ("examples", 0, "promptDigest"),
        True,
    ),
    (
        "RunShardOutput",
        {k: v for k, v in RUN_SHARD_OUTPUT.items() if k != "measurements"},
        ("measurements",),
        True,
    ),
    (
        "RunShardOutput",
        _with(THROUGHPUT_OUTPUT, ("measurements", 0, "measured", "medianSeconds"), 0.0),
        ("measurements", 0, "measured", "medianSeconds"),
        True,
    ),
    (
        "RunShardOutput",
        _with(THROUGHPUT_OUTPUT, ("measurements", 0, "baseline", "runs"), 0),
        ("measurements", 0, "baseline", "runs"),
        True,
    ),
    (
        "RunShardOutput",
        _with(THROUGHPUT_OUTPUT, ("measurements", 0, "measured", "runSeconds"), [0.0045] * 9),
        ("measurements", 0, "measured", "runSeconds"),
        False,  # one entry per run: zod's refine, which JSON Schema does not carry
    ),
    (
        "RunShardOutput",
        _with(THROUGHPUT_OUTPUT, ("measurements", 0, "baseline", "runSeconds", 3), 0.0),
        # pydantic names the branch of the optional field it tried
        ("measurements", 0, "baseline", "runSeconds", "list[constrained-float]", 3),
        True,
    ),
    (
        "RunShardOutput",
        _with(THROUGHPUT_OUTPUT, ("measurements", 0, "versions", "torch"), 2),
        ("measurements", 0, "versions", "torch"),
        True,
    ),
    (
        "RunShardInput",
        _with(RUN_SHARD_INPUT, ("scorer", "name"), "None"),
        ("scorer", "name"),
        True,
    ),
    ("ShardHeartbeat", {"examplesDone": -1}, ("examplesDone",), True),
    ("ShardHeartbeat", {"examplesDone": 1, "next": 2}, ("next",), True),
    (
        "DescribeTaskOutput",
        {"numExamples": 3, "dataDigest": "0x" + "a" * 62},
        ("dataDigest",),
        True,
    ),
]


@pytest.mark.parametrize(
    ("name", "payload"),
    [(name, p) for name, payloads in VALID_PAYLOADS.items() for p in payloads],
)
def test_valid_payload_round_trips(name: str, payload: dict[str, Any]) -> None:
    model = contract.CROSS_LANGUAGE_MODELS[name].model_validate(payload)
    assert model.to_json() == payload


@pytest.mark.parametrize(("name", "payload", "loc", "_"), INVALID_PAYLOADS)
def test_invalid_payload_names_the_field(
    name: str, payload: dict[str, Any], loc: tuple[Any, ...], _: bool
) -> None:
    with pytest.raises(ValidationError) as caught:
        contract.CROSS_LANGUAGE_MODELS[name].model_validate(payload)
    locations = [tuple(error["loc"]) for error in caught.value.errors()]
    assert loc in locations, f"expected an error at {loc}, got {locations}"


def test_snake_case_attributes_and_camel_case_wire() -> None:
    shard = contract.RunShardInput.model_validate(RUN_SHARD_INPUT)
    assert shard.generation.max_prompt_tokens == 2000
    assert shard.slices is not None and shard.slices.bigram_counts is None
    built = contract.ShardHeartbeat(examples_done=5)
    assert built.to_json() == {"examplesDone": 5}
    with pytest.raises(ValidationError):
        shard.shard_index = 2  # payloads are frozen


def test_activity_names_match_contract_ts() -> None:
    source = (Path(__file__).parents[2] / "workflows" / "contract.ts").read_text()
    for python_name in (contract.RUN_SHARD, contract.DESCRIBE_TASK, contract.DESCRIBE_WORKER):
        assert f"'{python_name}'" in source
    assert f"GPU_QUEUE = '{contract.GPU_QUEUE}'" in source


# ---- against the JSON Schema exported from zod -------------------------------------------------


def _load_exported_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """(root document for $ref resolution, name -> schema) for either export layout: a top-level
    ``$defs`` (or zod registry ``schemas``) block, or a plain map of name -> standalone schema."""
    if not SCHEMA_PATH.exists():
        pytest.skip(f"{SCHEMA_PATH.name} not exported yet (npm run generate writes it)")
    root = json.loads(SCHEMA_PATH.read_text())
    for key in ("$defs", "schemas"):
        if isinstance(root.get(key), dict):
            return root, root[key]
    return root, root


def _resolve(schema: dict[str, Any], root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        if ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            schema = target
        else:
            schema = defs[ref.removesuffix(".json").rsplit("/", 1)[-1]]
    return schema


def _normalise(
    schema: dict[str, Any], root: dict[str, Any], defs: dict[str, Any]
) -> dict[str, Any]:
    """Reduce a JSON Schema node to what both generators must agree on: types, nullability,
    properties, required keys, closedness and value constraints. Titles, descriptions, zod's
    JS-safe-integer bounds and the spelling of "nullable" (anyOf vs type list) are ignored."""
    schema = _resolve(schema, root, defs)
    nullable = False
    if "anyOf" in schema:
        variants = [_resolve(v, root, defs) for v in schema["anyOf"]]
        non_null = [v for v in variants if v.get("type") != "null"]
        assert len(non_null) == 1, f"unexpected union {schema}"
        nullable = len(non_null) < len(variants)
        schema = non_null[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        nullable = nullable or "null" in kind
        rest = [k for k in kind if k != "null"]
        kind = rest[0] if len(rest) == 1 else tuple(rest)
    out: dict[str, Any] = {"type": kind, "nullable": nullable}
    for key in (
        "pattern",
        "minimum",
        "exclusiveMinimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
    ):
        if key in schema and not (
            key in ("minimum", "maximum") and abs(schema[key]) == MAX_SAFE_INTEGER
        ):
            out[key] = schema[key]
    if "enum" in schema:
        out["enum"] = sorted(schema["enum"])
    if "items" in schema:
        out["items"] = _normalise(schema["items"], root, defs)
    if "properties" in schema:
        out["properties"] = {
            k: _normalise(v, root, defs) for k, v in sorted(schema["properties"].items())
        }
        out["required"] = sorted(schema.get("required", []))
        out["closed"] = schema.get("additionalProperties") is False
    elif kind == "object":
        out["map"] = True  # a free-form record such as task params
    return out


def _pydantic_schema(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    exported = contract.CROSS_LANGUAGE_MODELS[name].model_json_schema(by_alias=True)
    return exported, exported.get("$defs", {})


@pytest.mark.parametrize("name", sorted(contract.CROSS_LANGUAGE_MODELS))
def test_properties_and_required_match_zod(name: str) -> None:
    root, defs = _load_exported_schemas()
    assert name in defs, f"{name} missing from {SCHEMA_PATH.name}: has {sorted(defs)}"
    zod = _resolve(defs[name], root, defs)
    model = contract.CROSS_LANGUAGE_MODELS[name]
    aliases = {field.alias or key for key, field in model.model_fields.items()}
    required = {
        field.alias or key for key, field in model.model_fields.items() if field.is_required()
    }
    assert set(zod["properties"]) == aliases
    assert set(zod.get("required", [])) == required
    assert zod.get("additionalProperties") is False


@pytest.mark.parametrize("name", sorted(contract.CROSS_LANGUAGE_MODELS))
def test_every_constraint_matches_zod(name: str) -> None:
    root, defs = _load_exported_schemas()
    ours_root, ours_defs = _pydantic_schema(name)
    ours = _normalise(ours_root, ours_root, ours_defs)
    theirs = _normalise(defs[name], root, defs)
    assert ours == theirs


@pytest.mark.parametrize(
    ("name", "payload"),
    [(name, p) for name, payloads in VALID_PAYLOADS.items() for p in payloads],
)
def test_valid_payload_passes_zod_schema(name: str, payload: dict[str, Any]) -> None:
    root, defs = _load_exported_schemas()
    _json_schema_validator(name, root, defs).validate(payload)


@pytest.mark.parametrize(("name", "payload", "loc", "schema_catches"), INVALID_PAYLOADS)
def test_invalid_payload_fails_zod_schema(
    name: str, payload: dict[str, Any], loc: tuple[Any, ...], schema_catches: bool
) -> None:
    if not schema_catches:
        pytest.skip("cross-field rule (zod refine) has no JSON Schema form")
    root, defs = _load_exported_schemas()
    errors = list(_json_schema_validator(name, root, defs).iter_errors(payload))
    assert errors, f"{name} schema accepted an invalid payload at {loc}"


def _json_schema_validator(
    name: str, root: dict[str, Any], defs: dict[str, Any]
) -> jsonschema.Draft202012Validator:
    if defs is root:
        schema = root[name]
    else:  # resolve refs against the whole document
        schema = {**root, "$ref": f"#/{'$defs' if '$defs' in root else 'schemas'}/{name}"}
    return jsonschema.Draft202012Validator(schema, format_checker=None)
