"""Set disjointness (docs/protocol.md, Synthetic tasks): two sets drawn from disjoint halves of the
element vocabulary, made to share exactly one element; prompt ``A | B |``, answer the shared
element. Tested by ``tests/test_synthetic_tasks.py``.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from ..tokenizers import SET_ELEMENTS
from .strategies import PromptParts
from .synthetic import Generated, SyntheticParams, SyntheticTask

HALF = len(SET_ELEMENTS) // 2
SHOT_SET_SIZE = 4


SetSize = Annotated[int, Field(ge=1, le=HALF)]
SizePair = Annotated[list[SetSize], Field(min_length=2, max_length=2)]  # [|A|, |B|]


class SetDisjointnessParams(SyntheticParams):
    sizes: list[SizePair] = Field(
        default_factory=lambda: [[4, 16], [16, 4]], min_length=1, max_length=32
    )


class SetDisjointnessTask(SyntheticTask):
    name = "set_disjointness"
    version = 1
    generator_version = 1
    params_model = SetDisjointnessParams
    params: SetDisjointnessParams

    def _generate(self, rng: np.random.Generator, a: int, b: int) -> Generated:
        # As the paper's generator: permute the elements, A from one half, B from the other,
        # then one element of A overwrites a random slot of B.
        permuted = rng.permutation(len(SET_ELEMENTS))
        set_a = rng.choice(permuted[:HALF], size=a, replace=False)
        set_b = rng.choice(permuted[HALF:], size=b, replace=False)
        shared = set_a[rng.integers(a)]
        shared_position = int(rng.integers(b))
        set_b[shared_position] = shared
        words_a = " ".join(SET_ELEMENTS[i] for i in set_a)
        words_b = " ".join(SET_ELEMENTS[i] for i in set_b)
        parts = PromptParts(context=f"{words_a} | {words_b}", query="|")
        meta = {
            "a": a,
            "b": b,
            "sizes": f"{a}_{b}",  # the paper slices accuracy by "|A|_|B|"
            "longer": "a" if a > b else "b" if b > a else "equal",
            "sharedPositionInB": shared_position,
        }
        return Generated(parts, SET_ELEMENTS[shared], meta)

    def generate(self, rng: np.random.Generator, example_id: int) -> Generated:
        a, b = self.params.sizes[example_id % len(self.params.sizes)]
        return self._generate(rng, a, b)

    def generate_shot(self, rng: np.random.Generator) -> Generated:
        return self._generate(rng, SHOT_SET_SIZE, SHOT_SET_SIZE)
