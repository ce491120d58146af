"""Builds a Task from (name, version, params) as a sweep spec names it. Synthetic tasks live here;
the real datasets (FDA, SWDE, SQuAD, TriviaQA, NQ, DROP) are built by ``datasets.py``, imported
only when asked for; ``prefill_throughput`` (a measurement task, not a Task of prompts) by
``throughput.py``. Tested by ``tests/test_synthetic_tasks.py`` and ``tests/test_throughput.py``.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..protocols import Task
from .doc_qa import SyntheticDocQaTask
from .mqar import MqarTask
from .perplexity import PerplexityTask
from .set_disjointness import SetDisjointnessTask
from .synthetic import SyntheticTask
from .throughput import PrefillThroughputTask

SYNTHETIC_TASKS: dict[str, type[SyntheticTask]] = {
    task.name: task for task in (MqarTask, SyntheticDocQaTask, SetDisjointnessTask)
}
# Measurement tasks: their examples are timed points, not prompts (catalog kind "throughput").
THROUGHPUT_TASKS: dict[str, type[PrefillThroughputTask]] = {
    PrefillThroughputTask.name: PrefillThroughputTask
}
# Measurement tasks that score the model's own next-token predictions (catalog kind "perplexity").
PERPLEXITY_TASKS: dict[str, type[PerplexityTask]] = {PerplexityTask.name: PerplexityTask}
TASK_VERSIONS: dict[str, int] = {name: task.version for name, task in SYNTHETIC_TASKS.items()}
# Versions of these are owned and checked by datasets.py.
DATASET_TASK_NAMES: tuple[str, ...] = ("fda", "swde", "squad", "triviaqa", "nq", "drop")


def known_task_names() -> list[str]:
    return sorted([*SYNTHETIC_TASKS, *THROUGHPUT_TASKS, *PERPLEXITY_TASKS, *DATASET_TASK_NAMES])


def task_kind(name: str) -> str:
    """The catalog's ``kind`` of a task: "throughput", "perplexity" or "recall"."""
    if name in THROUGHPUT_TASKS:
        return "throughput"
    return "perplexity" if name in PERPLEXITY_TASKS else "recall"


def build_task(
    name: str, version: int, params: dict[str, Any]
) -> Task | PrefillThroughputTask | PerplexityTask:
    if name in SYNTHETIC_TASKS or name in THROUGHPUT_TASKS or name in PERPLEXITY_TASKS:
        task_class = (
            SYNTHETIC_TASKS.get(name) or THROUGHPUT_TASKS.get(name) or PERPLEXITY_TASKS[name]
        )
        if version != task_class.version:
            raise ValueError(
                f"task {name!r} version {version!r} requested, but this worker implements "
                f"version {task_class.version}"
            )
        return task_class(params)
    if name in DATASET_TASK_NAMES:
        from .datasets import build_dataset_task

        return build_dataset_task(name, version, params)
    suggestion = difflib.get_close_matches(name, known_task_names(), n=1)
    hint = f"; did you mean {suggestion[0]!r}?" if suggestion else ""
    raise ValueError(f"unknown task {name!r}{hint} Known tasks: {known_task_names()}")
