"""What the synthetic tasks share: strict camelCase params, per-example random streams, the data
digest, and turning generated parts into Examples under any strategy. Each task only writes
``generate`` (and ``generate_shot`` for few-shot). Tested by ``tests/test_synthetic_tasks.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from ..protocols import Example, StrategySpec, Tokenizer
from .scoring import get_scorer
from .strategies import PromptParts, SolvedParts, describe_validation_error, render_prompt

MAX_EXAMPLES = 100_000
MAX_SEED = 2**32 - 1

# Random stream ids inside one example; few-shot shot k uses SHOT_STREAM + k.
MAIN_STREAM = 0
SHOT_STREAM = 1


class SpecParams(BaseModel):
    """Params as the TypeScript sweep spec writes them: camelCase, no extras, no coercion."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )


P = TypeVar("P", bound=BaseModel)


def parse_params(task_name: str, model: type[P], params: Any) -> P:
    """A task's params, validated; an error names the task, each bad field and its value."""
    if not isinstance(params, dict):
        raise ValueError(f"task {task_name!r} params must be an object, got {params!r}")
    try:
        return model.model_validate(params)
    except ValidationError as error:
        raise ValueError(f"task {task_name!r} params: {describe_validation_error(error)}") from None


class SyntheticParams(SpecParams):
    # bounds as in workflows/catalog.ts (LIMITS); tests/test_task_catalog.py checks they agree
    num_examples: int = Field(ge=1, le=MAX_EXAMPLES)
    seed: int = Field(ge=0, le=MAX_SEED)


def example_rng(seed: int, example_id: int, stream: int) -> np.random.Generator:
    """A generator that depends only on (seed, example_id, stream), so any shard range
    regenerates exactly the same examples. The key has a fixed length on purpose."""
    return np.random.default_rng([seed, example_id, stream])


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Generated:
    """One generated example before a strategy lays it out."""

    parts: PromptParts
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


class SyntheticTask:
    """Base for tasks whose examples are generated from (params, example_id)."""

    name: ClassVar[str]
    version: ClassVar[int]
    generator_version: ClassVar[int]
    vocabulary: ClassVar[str] = "synthetic-v1"  # every word a prompt may contain comes from here
    scorer: ClassVar[str] = "exact"
    params_model: ClassVar[type[SyntheticParams]]

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = parse_params(self.name, self.params_model, params)
        self._score = get_scorer(self.scorer)

    def num_examples(self) -> int:
        return self.params.num_examples

    def data_digest(self) -> str:
        """sha256 over everything that decides the examples' text (defaults filled in)."""
        identity = {
            "name": self.name,
            "version": self.version,
            "generatorVersion": self.generator_version,
            "vocabulary": self.vocabulary,
            "params": self.params.model_dump(by_alias=True),
        }
        return hashlib.sha256(canonical_json(identity).encode()).hexdigest()

    def generate(self, rng: np.random.Generator, example_id: int) -> Generated:
        """Build example ``example_id`` using only ``rng`` and the params."""
        raise NotImplementedError

    def generate_shot(self, rng: np.random.Generator) -> Generated:
        """A small solved example for few-shot prompts."""
        raise NotImplementedError

    def examples(
        self, start: int, end: int, tokenizer: Tokenizer, strategy: StrategySpec
    ) -> list[Example]:
        if not 0 <= start <= end <= self.num_examples():
            raise ValueError(
                f"task {self.name!r}: example range [{start}, {end}) is outside "
                f"[0, {self.num_examples()})"
            )
        seed = self.params.seed
        out = []
        for example_id in range(start, end):
            item = self.generate(example_rng(seed, example_id, MAIN_STREAM), example_id)

            def make_shot(k: int, example_id: int = example_id) -> SolvedParts:
                shot = self.generate_shot(example_rng(seed, example_id, SHOT_STREAM + k))
                return SolvedParts(shot.parts, shot.answer)

            text = render_prompt(strategy, item.parts, self.name, make_shot)
            out.append(
                Example(
                    example_id=example_id,
                    prompt_ids=tokenizer.encode(text),
                    gold=[item.answer],
                    prompt_text=text,
                    meta=dict(item.meta),
                )
            )
        return out

    def score(self, prediction: str, gold: list[str]) -> float:
        return self._score(prediction, gold)
