"""Prompt strategies: the versioned registry, strict parameter parsing, and the one place where a
prompt is laid out from a task's (question, context, query) parts, so every task shares layouts.
Tested by ``tests/test_strategies.py``; per-task prompt strings in
``tests/test_synthetic_tasks.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..protocols import StrategySpec


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class JrtPromptParams(NoParams):
    repeats: int = Field(
        2, ge=2, le=8, description="how many copies of the context the prompt holds"
    )


class JrtRnnPadParams(NoParams):
    # "released-v1": the paper's code, whose left pads leak into prefix linear attention
    # (models/jrt_released_padding.py); "masked": pads reach no state.
    padding: Literal["masked", "released-v1"] = "masked"


class FewShotParams(NoParams):
    shots: int = Field(2, ge=1, le=16, description="solved examples placed before the real one")


STRATEGY_VERSIONS: dict[str, int] = {
    "default": 1,
    "jrt_prompt": 1,
    "question_first": 1,
    # the paper's real-task JRT layout for every task: the question first, then the copies
    "jrt_question_first": 1,
    "few_shot": 1,
    # JRT-RNN decode modes (paper Table 4). The prompt text is laid out here; the engine reads the
    # strategy name to left-pad to the encoder length (left_pad, read2x) or re-encode per token
    # (iterate).
    "jrt_rnn_left_pad": 1,
    "jrt_rnn_read2x": 1,
    "jrt_rnn_iterate": 1,
}

STRATEGY_PARAMS: dict[str, type[NoParams]] = {
    "default": NoParams,
    "jrt_prompt": JrtPromptParams,
    "question_first": NoParams,
    "jrt_question_first": JrtPromptParams,
    "few_shot": FewShotParams,
    "jrt_rnn_left_pad": JrtRnnPadParams,
    "jrt_rnn_read2x": JrtRnnPadParams,
    "jrt_rnn_iterate": NoParams,
}


def parse_strategy(name: str, version: int, params: dict | None = None) -> StrategySpec:
    """Validate a strategy as named in a sweep spec; the result carries params with defaults
    filled in, so equivalent specs produce equal cell keys."""
    if name not in STRATEGY_VERSIONS:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(STRATEGY_VERSIONS)}")
    if version != STRATEGY_VERSIONS[name]:
        raise ValueError(
            f"strategy {name!r} version {version!r} requested, but this worker implements "
            f"version {STRATEGY_VERSIONS[name]}"
        )
    try:
        parsed = STRATEGY_PARAMS[name].model_validate(params or {})
    except ValidationError as error:
        raise ValueError(f"strategy {name!r} params: {describe_validation_error(error)}") from None
    return StrategySpec(name=name, version=version, params=parsed.model_dump())


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad field: ``field.path: message (got value)``."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"{field}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


@dataclass(frozen=True)
class PromptParts:
    """The pieces a task contributes; each is canonical text (single spaces, no edge spaces).

    ``question``: what ``question_first`` puts before the context (the natural question, or for
    MQAR the queried key). ``jrt_lead``: what JRT-Prompt puts before the first copy, the paper's
    natural question or "information about KEY ."; None repeats the bare context, as zoology's
    MQAR ``num_passes`` does.
    """

    context: str
    query: str
    question: str | None = None
    jrt_lead: str | None = None


@dataclass(frozen=True)
class SolvedParts:
    parts: PromptParts
    answer: str


def _join(*pieces: str | None) -> str:
    return " ".join(p for p in pieces if p)


def default_layout(parts: PromptParts) -> str:
    return _join(parts.context, parts.query)


def question_first_layout(parts: PromptParts, task_name: str) -> str:
    if not parts.question:
        raise ValueError(
            f"strategy 'question_first' needs a question, and task {task_name!r} has none"
        )
    return _join(parts.question, parts.context, parts.query)


def jrt_layout(parts: PromptParts, repeats: int) -> str:
    """[lead] C \\n C ... C query: the paper's JR-p layout (one newline between copies)."""
    return _join(parts.jrt_lead, "\n".join([parts.context] * repeats), parts.query)


def jrt_question_first_layout(parts: PromptParts, repeats: int) -> str:
    """Q C \\n C ... C query: the paper's JRT-Prompt for real tasks (the natural question, or
    "information about KEY .", before the first copy), given to every task: MQAR's queried key
    with "?", document QA's lead. A task with no question (set disjointness) has no lead to put
    first, so its layout is JRT-Prompt's."""
    return _join(
        parts.question or parts.jrt_lead, "\n".join([parts.context] * repeats), parts.query
    )


def few_shot_layout(parts: PromptParts, shots: list[SolvedParts]) -> str:
    solved = [_join(default_layout(s.parts), s.answer) for s in shots]
    return "\n".join([*solved, default_layout(parts)])


def render_prompt(
    strategy: StrategySpec,
    parts: PromptParts,
    task_name: str,
    make_shot: Callable[[int], SolvedParts] | None = None,
) -> str:
    """Lay out one prompt. ``make_shot(k)`` builds the k-th solved example for ``few_shot``; it
    must be a pure function of the example so shards regenerate identical prompts."""
    spec = parse_strategy(strategy.name, strategy.version, strategy.params)
    name, params = spec.name, spec.params
    if name in ("default", "jrt_rnn_left_pad", "jrt_rnn_iterate"):
        return default_layout(parts)
    if name == "question_first":
        return question_first_layout(parts, task_name)
    if name == "jrt_prompt":
        return jrt_layout(parts, params["repeats"])
    if name == "jrt_question_first":
        return jrt_question_first_layout(parts, params["repeats"])
    if name == "jrt_rnn_read2x":
        # The paper's Read-2x row feeds the JRT-Prompt input to JRT-RNN.
        return jrt_layout(parts, 2)
    if name == "few_shot":
        if make_shot is None:
            raise ValueError(f"strategy 'few_shot' is not available for task {task_name!r}")
        return few_shot_layout(parts, [make_shot(k) for k in range(params["shots"])])
    raise AssertionError(f"strategy {name!r} is registered but has no layout")
