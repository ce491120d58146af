"""The worker implements every task, strategy and scorer the orchestrator's catalog names, at the
same versions and of the same kind (task-catalog.json is generated from workflows/catalog.ts by
`npm run generate`)."""

from __future__ import annotations

import json
from pathlib import Path

from twice_inference.tasks import datasets, scoring, strategies
from twice_inference.tasks.registry import (
    PERPLEXITY_TASKS,
    TASK_VERSIONS,
    THROUGHPUT_TASKS,
    task_kind,
)

CATALOG = json.loads(
    (Path(__file__).parents[1] / "twice_inference" / "task-catalog.json").read_text()
)


def test_every_task_is_implemented_at_the_catalog_version() -> None:
    for name, entry in CATALOG["tasks"].items():
        assert task_kind(name) == entry["kind"], name
        if entry["kind"] == "throughput":
            assert THROUGHPUT_TASKS[name].version == entry["version"], name
            assert entry["scorer"] == "none", name  # measurements are not scored
        elif entry["kind"] == "perplexity":
            assert PERPLEXITY_TASKS[name].version == entry["version"], name
            assert entry["scorer"] == "none", name
        elif entry["synthetic"]:
            assert TASK_VERSIONS.get(name) == entry["version"], name
        else:
            assert name in datasets.SPECS, name
            assert datasets.TASK_VERSION == entry["version"], name
        assert entry["scorer"] in scoring.SCORER_VERSIONS


def test_every_implemented_task_is_in_the_catalog() -> None:
    implemented = {*TASK_VERSIONS, *THROUGHPUT_TASKS, *PERPLEXITY_TASKS, *datasets.SPECS}
    assert implemented == set(CATALOG["tasks"])


def test_strategies_and_scorers_match() -> None:
    assert CATALOG["strategies"] == strategies.STRATEGY_VERSIONS
    assert CATALOG["scorers"] == scoring.SCORER_VERSIONS


# --- parameter bounds: one source of truth (workflows/catalog.ts), the same on both sides -------

BOUND_KEYS = ("minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength")


def _bounds(schema: dict, path: str = "") -> dict[str, object]:
    """Every numeric, length and size bound of a JSON schema, by path; optional fields (anyOf with
    null) are read through, and a tuple of equal items is read as an array of them."""
    out: dict[str, object] = {}
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            out.update(_bounds(branch, path))
    for key in BOUND_KEYS:
        if key in schema:
            out[f"{path}.{key}"] = schema[key]
    items = schema.get("items") or (schema.get("prefixItems") or [None])[0]
    if isinstance(items, dict):
        out.update(_bounds(items, f"{path}[]"))
    for name, prop in schema.get("properties", {}).items():
        out.update(_bounds(prop, f"{path}/{name}"))
    return out


def _python_task_params() -> dict[str, type]:
    from twice_inference.tasks.perplexity import PerplexityParams
    from twice_inference.tasks.registry import SYNTHETIC_TASKS
    from twice_inference.tasks.throughput import PrefillThroughputParams

    models: dict[str, type] = {
        "prefill_throughput": PrefillThroughputParams,
        "perplexity": PerplexityParams,
    }
    for name, task in SYNTHETIC_TASKS.items():
        models[name] = task.params_model
    for name in datasets.SPECS:
        models[name] = datasets.SPECS[name].params_model
    return models


def test_task_parameter_bounds_match_the_catalog() -> None:
    models = _python_task_params()
    assert set(models) == set(CATALOG["taskParams"])
    for name, model in models.items():
        ours = _bounds(model.model_json_schema(by_alias=True))
        theirs = _bounds(CATALOG["taskParams"][name])
        assert ours == theirs, f"{name}: worker {ours} != catalog {theirs}"
        # and every parameter has an upper bound: nothing a spec can name is unbounded
        for prop, schema in CATALOG["taskParams"][name]["properties"].items():
            upper = ("maximum", "maxItems", "maxLength")
            bounded = any(k.startswith(f"/{prop}") and k.endswith(upper) for k in theirs)
            choice = all("const" in b for b in schema.get("anyOf", [{}]))
            # dataDir is a path: checked against the allowed data roots, not by length
            assert bounded or choice or prop == "dataDir", (name, prop)


def test_strategy_parameter_bounds_match_the_catalog() -> None:
    assert set(strategies.STRATEGY_PARAMS) == set(CATALOG["strategyParams"])
    for name, model in strategies.STRATEGY_PARAMS.items():
        ours = _bounds(model.model_json_schema())
        assert ours == _bounds(CATALOG["strategyParams"][name]), name


def test_the_worker_refuses_what_the_catalog_refuses() -> None:
    from twice_inference.tasks.registry import build_task

    for params, field in [
        ({"numExamples": 10**12}, "numExamples"),
        ({"numExamples": 8, "numKvPairs": 100_000}, "numKvPairs"),
    ]:
        try:
            build_task("mqar", 1, {"seed": 0, **params})
        except ValueError as error:
            assert field in str(error)
        else:
            raise AssertionError(f"mqar accepted {params}")
