"""MQAR-style associative recall as a generation task: a context of distinct key-value pairs, then
one key from it; the answer is that key's value (docs/protocol.md, Synthetic tasks: one query per
prompt).
Tested by ``tests/test_synthetic_tasks.py``.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..tokenizers import MQAR_KEYS, MQAR_VALUES
from .strategies import PromptParts
from .synthetic import Generated, SyntheticParams, SyntheticTask

SHOT_KV_PAIRS = 4  # few-shot examples stay short so they do not dominate the prompt


class MqarParams(SyntheticParams):
    num_kv_pairs: int = Field(16, ge=1, le=min(len(MQAR_KEYS), len(MQAR_VALUES)))


class MqarTask(SyntheticTask):
    name = "mqar"
    version = 1
    generator_version = 1
    params_model = MqarParams
    params: MqarParams

    def _generate(self, rng: np.random.Generator, num_pairs: int) -> Generated:
        key_ids = rng.choice(len(MQAR_KEYS), size=num_pairs, replace=False)
        value_ids = rng.choice(len(MQAR_VALUES), size=num_pairs, replace=False)
        query_index = int(rng.integers(num_pairs))
        keys = [MQAR_KEYS[i] for i in key_ids]
        values = [MQAR_VALUES[i] for i in value_ids]
        query_key = keys[query_index]
        context = " ".join(f"{k} {v}" for k, v in zip(keys, values, strict=True))
        parts = PromptParts(context=context, query=query_key, question=f"{query_key} ?")
        meta = {
            "numKvPairs": num_pairs,
            "queryPairIndex": query_index,
            # 0 = the last pair before the query: the recency a recurrent state favours.
            "pairsFromEnd": num_pairs - 1 - query_index,
            # every (key, value): what training asks after the first query (train.py)
            "pairs": [[k, v] for k, v in zip(keys, values, strict=True)],
        }
        return Generated(parts, values[query_index], meta)

    def generate(self, rng: np.random.Generator, example_id: int) -> Generated:
        return self._generate(rng, self.params.num_kv_pairs)

    def generate_shot(self, rng: np.random.Generator) -> Generated:
        return self._generate(rng, min(SHOT_KV_PAIRS, self.params.num_kv_pairs))
