"""Synthetic FDA-style document QA: a one-line document of "attribute : value ." facts about an
entity mixed with filler sentences; the cloze query "attribute :" asks for one fact's value.
Prompts mirror the paper's FDA templates (docs/protocol.md, Prompts and strategies).
Tested by ``tests/test_synthetic_tasks.py``.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..tokenizers import DOC_ATTRIBUTE_POOLS, DOC_ATTRIBUTES, FILLER_WORDS
from .strategies import PromptParts
from .synthetic import Generated, SyntheticParams, SyntheticTask

FILLER_SENTENCE_WORDS = (3, 7)  # inclusive range of words in one filler sentence
SHOT_FACTS = 2


class DocQaParams(SyntheticParams):
    num_facts: int = Field(8, ge=1, le=len(DOC_ATTRIBUTES))


class SyntheticDocQaTask(SyntheticTask):
    name = "synthetic_doc_qa"
    version = 1
    generator_version = 1
    params_model = DocQaParams
    params: DocQaParams

    def _filler_sentence(self, rng: np.random.Generator) -> str:
        length = int(rng.integers(FILLER_SENTENCE_WORDS[0], FILLER_SENTENCE_WORDS[1] + 1))
        words = rng.choice(len(FILLER_WORDS), size=length)
        return " ".join(FILLER_WORDS[i] for i in words) + " ."

    def _generate(self, rng: np.random.Generator, num_facts: int, num_fillers: int) -> Generated:
        attributes = [
            DOC_ATTRIBUTES[i]
            for i in rng.choice(len(DOC_ATTRIBUTES), size=num_facts, replace=False)
        ]
        values = [
            DOC_ATTRIBUTE_POOLS[a][int(rng.integers(len(DOC_ATTRIBUTE_POOLS[a])))]
            for a in attributes
        ]
        facts = [f"{a} : {v} ." for a, v in zip(attributes, values, strict=True)]
        fillers = [self._filler_sentence(rng) for _ in range(num_fillers)]
        # Facts keep their order; fillers land at random places between them, like the prose
        # between fields of a semi-structured document.
        is_fact = np.zeros(num_facts + num_fillers, dtype=bool)
        is_fact[rng.choice(len(is_fact), size=num_facts, replace=False)] = True
        fact_iter, filler_iter = iter(facts), iter(fillers)
        sentences = [next(fact_iter) if flag else next(filler_iter) for flag in is_fact]
        query_index = int(rng.integers(num_facts))
        key = attributes[query_index]
        lead = f"information about {key} ."
        parts = PromptParts(
            context=" ".join(sentences), query=f"{key} :", question=lead, jrt_lead=lead
        )
        meta = {
            "key": key,
            "numFacts": num_facts,
            "factIndex": query_index,
            "factsFromEnd": num_facts - 1 - query_index,
        }
        return Generated(parts, values[query_index], meta)

    def generate(self, rng: np.random.Generator, example_id: int) -> Generated:
        n = self.params.num_facts
        return self._generate(rng, n, n)

    def generate_shot(self, rng: np.random.Generator) -> Generated:
        n = min(SHOT_FACTS, self.params.num_facts)
        return self._generate(rng, n, 1)
