"""The worker implements every task, strategy and scorer the orchestrator's catalog names, at the
same versions and of the same kind (task-catalog.json is generated from workflows/catalog.ts by
`npm run generate`)."""

from __future__ import annotations

import json
from pathlib import Path

from twice_inference.tasks import datasets, scoring, strategies
from twice_inference.tasks.registry import TASK_VERSIONS, THROUGHPUT_TASKS, task_kind

CATALOG = json.loads(
    (Path(__file__).parents[1] / "twice_inference" / "task-catalog.json").read_text()
)


def test_every_task_is_implemented_at_the_catalog_version() -> None:
    for name, entry in CATALOG["tasks"].items():
        assert task_kind(name) == entry["kind"], name
        if entry["kind"] == "throughput":
            assert THROUGHPUT_TASKS[name].version == entry["version"], name
            assert entry["scorer"] == "none", name  # measurements are not scored
        elif entry["synthetic"]:
            assert TASK_VERSIONS.get(name) == entry["version"], name
        else:
            assert name in datasets.SPECS, name
            assert datasets.TASK_VERSION == entry["version"], name
        assert entry["scorer"] in scoring.SCORER_VERSIONS


def test_every_implemented_task_is_in_the_catalog() -> None:
    implemented = {*TASK_VERSIONS, *THROUGHPUT_TASKS, *datasets.SPECS}
    assert implemented == set(CATALOG["tasks"])


def test_strategies_and_scorers_match() -> None:
    assert CATALOG["strategies"] == strategies.STRATEGY_VERSIONS
    assert CATALOG["scorers"] == scoring.SCORER_VERSIONS
