"""The zoo's training configuration (one file under ``zoo/configs``), the seed bands and the
training mixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ZOO_DIR = Path(__file__).parents[1] / "zoo"
CONFIG_DIR = ZOO_DIR / "configs"
MANIFEST_VERSION = 1

# Evaluation sweep specs draw task seeds from [0, EVAL_SEED_LIMIT). Training and held-out
# validation use their own bands above it, so no zoo model has seen an evaluated prompt.
EVAL_SEED_LIMIT = 1_000
TRAIN_SEED_BASE = 1_000_000
VALIDATION_SEED_BASE = 2_000_000
SEED_BAND = 1_000_000  # each band holds [base, base + SEED_BAND)
HUGE_NUM_EXAMPLES = 2**40  # generators are indexed by example id; training never runs out
TIMING_STEPS = 50  # steps timed before a --time-limit run sizes its schedule

# The training mixture (version 3: every MQAR key is asked and supervised, see
# DENSE_MQAR_SUPERVISION; version 2: mqar up to 16 pairs, one answer per sequence; version 1 went
# to 64 pairs). Every model trains on the same mixture; it spans the parameter ranges of the
# tasks' defaults, not any evaluation.
MIXTURE_VERSION = 3
# With one supervised answer per sequence, the attention and Based zoo models never learned MQAR
# (mixture 2: 1-4% after 8000 steps) while Mamba-2 did; zoology trains recall with every query of
# a sequence supervised. Evaluation still asks one key per prompt, laid out exactly like the first
# query of a training sequence.
DENSE_MQAR_SUPERVISION = True
TRAINING_MIXTURE: dict[str, list[dict[str, Any]]] = {
    # up to the 16 pairs the default sweep evaluates: longer contexts slowed learning of every
    # task for models this small (seen in the first GPU runs), before any JRT result existed
    "mqar": [{"numKvPairs": n} for n in (4, 8, 16)],
    "synthetic_doc_qa": [{"numFacts": n} for n in (4, 8, 13)],
    "set_disjointness": [
        {"sizes": [[4, 16], [16, 4], [8, 32], [32, 8], [64, 16], [16, 64]]},
    ],
}
# Half the training prompts use each layout: the tiny models have no pretraining corpus in which
# text repeats, so without jrt_prompt examples a repeated context would be out of distribution.
TRAINING_STRATEGIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("default", {}),
    ("jrt_prompt", {"repeats": 2}),
)
# Held-out validation: each task at its default params, under each training strategy.
VALIDATION_TASKS: dict[str, dict[str, Any]] = {
    "mqar": {},
    "synthetic_doc_qa": {},
    "set_disjointness": {},
}


class ZooTrainingConfig(BaseModel):
    """One file under ``zoo/configs``: the model (``family`` + ``model`` as the family's builder
    takes it) and how it is trained."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^zoo-[a-z0-9-]+$")
    family: Literal["transformer", "based", "jrt_rnn", "mamba", "mamba2"]
    model: dict[str, Any]
    seed: int = Field(ge=0)
    steps: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    warmup_steps: int = Field(default=100, ge=0)
    weight_decay: float = Field(default=0.1, ge=0.0)
    grad_clip: float = Field(default=1.0, gt=0)
    eval_every: int = Field(gt=0)
    eval_examples: int = Field(default=128, gt=0)  # per task x strategy, for the curve
    final_eval_examples: int = Field(default=500, gt=0)  # per task x strategy, at the end
    # JRT-RNN objective (docs/protocol.md, Training objective): masked-LM loss on the encoder
    # region, weight 0.25.
    mlm_weight: float = Field(default=0.0, ge=0.0)
    mlm_probability: float = Field(default=0.15, ge=0.0, lt=1.0)
    # "answers": the task mixture, loss on answers and newlines only (the recall zoo);
    # "next_token": every token of a generated language's training documents (the perplexity
    # zoo, docs/protocol.md, Perplexity protocol), validated by per-slice perplexity.
    objective: Literal["answers", "next_token"] = "answers"
    corpus: str | None = Field(default=None, pattern=r"^synthetic:[a-z0-9-]+$")
    seq_len: int = Field(default=2048, ge=2, le=2048)
    # the first documents of the language's training stream (all of them for the shipped models:
    # then ``twice bigrams build <corpus>`` counts exactly what the model saw)
    train_documents: int = Field(default=16_384, ge=1, le=16_384)
    # float16 halves the committed weights; the loader casts to the catalog's dtype
    save_dtype: Literal["float32", "float16"] = "float32"
    # next_token only: the first ``curriculum_steps`` steps read each document's first
    # ``curriculum_seq_len`` tokens, seq_len / curriculum_seq_len times as many per batch (the same
    # tokens per step): copies there lie closer to their sources, and short sequences give many
    # more of them per second, so a copying mechanism has more chances to start forming.
    curriculum_steps: int = Field(default=0, ge=0)
    curriculum_seq_len: int | None = Field(default=None, ge=2, le=2048)

    @model_validator(mode="after")
    def _check(self) -> ZooTrainingConfig:
        if self.mlm_weight > 0 and self.family != "jrt_rnn":
            raise ValueError(
                f"mlm_weight={self.mlm_weight}: the masked-LM loss needs an encoder region, "
                f"which family {self.family!r} has not"
            )
        if (self.objective == "next_token") != (self.corpus is not None):
            raise ValueError(
                f"objective={self.objective!r} with corpus={self.corpus!r}: a next-token model "
                f"names the corpus it reads, an answers model none"
            )
        if self.objective == "next_token" and self.mlm_weight > 0:
            raise ValueError("the masked-LM term belongs to the answers objective only")
        if (self.curriculum_steps > 0) != (self.curriculum_seq_len is not None):
            raise ValueError(
                f"curriculum_steps={self.curriculum_steps} with curriculum_seq_len="
                f"{self.curriculum_seq_len}: a curriculum needs both, no curriculum neither"
            )
        if self.curriculum_seq_len is not None and (
            self.objective != "next_token" or self.seq_len % self.curriculum_seq_len
        ):
            raise ValueError(
                f"curriculum_seq_len={self.curriculum_seq_len}: a curriculum is for next_token "
                f"training, with a length that divides seq_len={self.seq_len}"
            )
        if self.curriculum_steps >= self.steps:
            raise ValueError(
                f"curriculum_steps={self.curriculum_steps} must be below steps={self.steps}"
            )
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be below steps={self.steps}")
        return self


def load_config(path: Path) -> ZooTrainingConfig:
    try:
        return ZooTrainingConfig.model_validate(json.loads(Path(path).read_text()))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
