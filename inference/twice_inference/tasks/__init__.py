"""Recall tasks, prompt strategies and scorers. ``build_task`` is the entry point; real-dataset
tasks load lazily so synthetic tasks work without dataset dependencies.
"""

from .registry import TASK_VERSIONS, build_task, known_task_names
from .scoring import SCORER_VERSIONS, get_scorer
from .strategies import STRATEGY_VERSIONS, parse_strategy

__all__ = [
    "SCORER_VERSIONS",
    "STRATEGY_VERSIONS",
    "TASK_VERSIONS",
    "build_task",
    "get_scorer",
    "known_task_names",
    "parse_strategy",
]
