"""Training data: seeds kept apart from evaluation, the task-mixture stream (batch ``step`` is a
pure function of (seed, step)), held-out validation sets and left-padded batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..protocols import Tokenizer
from ..tasks.corpus import resolve_corpus
from ..tasks.language import TRAIN_SEED as LANGUAGE_TRAIN_SEED
from ..tasks.language import Language
from ..tasks.registry import TASK_VERSIONS, build_task
from ..tasks.strategies import STRATEGY_VERSIONS, parse_strategy
from .config import (
    DENSE_MQAR_SUPERVISION,
    EVAL_SEED_LIMIT,
    HUGE_NUM_EXAMPLES,
    SEED_BAND,
    TRAIN_SEED_BASE,
    TRAINING_MIXTURE,
    TRAINING_STRATEGIES,
    VALIDATION_SEED_BASE,
    VALIDATION_TASKS,
)

# ---------------------------------------------------------------------------------------------
# Seeds and data
# ---------------------------------------------------------------------------------------------


def train_seed(variant: int) -> int:
    return TRAIN_SEED_BASE + variant


def validation_seed(variant: int) -> int:
    return VALIDATION_SEED_BASE + variant


def check_seed_bands(train_seeds: list[int], validation_seeds: list[int]) -> None:
    """Training, validation and evaluation seeds must never meet."""
    for seed in train_seeds:
        if not TRAIN_SEED_BASE <= seed < TRAIN_SEED_BASE + SEED_BAND:
            raise AssertionError(f"training seed {seed} is outside its band")
    for seed in validation_seeds:
        if not VALIDATION_SEED_BASE <= seed < VALIDATION_SEED_BASE + SEED_BAND:
            raise AssertionError(f"validation seed {seed} is outside its band")
    if min([*train_seeds, *validation_seeds]) < EVAL_SEED_LIMIT:
        raise AssertionError("a training or validation seed overlaps the evaluation seeds")
    if set(train_seeds) & set(validation_seeds):
        raise AssertionError("training and validation seeds overlap")


@dataclass(frozen=True)
class Sequence:
    """prompt ids, then the answer word's id; the target after the answer is the newline.
    ``followups``: further (query ids, answer id) pairs about the same context, each laid out
    after the previous answer's newline and supervised the same way (dense MQAR supervision)."""

    prompt_ids: list[int]
    answer_id: int
    task: str
    strategy: str
    followups: tuple[tuple[tuple[int, ...], int], ...] = ()


def answer_id(tokenizer: Tokenizer, gold: str) -> int:
    ids = tokenizer.encode(gold)
    if len(ids) != 1:
        raise ValueError(f"gold answer {gold!r} is {len(ids)} tokens; the zoo expects one word")
    return ids[0]


class TrainingStream:
    """Batch ``step`` is a pure function of (config seed, step), so any worker can build it and a
    rerun sees the same data whatever the number of workers."""

    def __init__(self, seed: int, batch_size: int, tokenizer: Tokenizer) -> None:
        self.seed, self.batch_size, self.tokenizer = seed, batch_size, tokenizer
        self.variants = []
        seeds = []
        for name in sorted(TRAINING_MIXTURE):
            for index, params in enumerate(TRAINING_MIXTURE[name]):
                seed_value = train_seed(len(seeds))
                seeds.append(seed_value)
                task = build_task(
                    name, TASK_VERSIONS[name], {**params, "numExamples": 1, "seed": seed_value}
                )
                # A spec's example count is bounded (the catalog's limits); the training stream is
                # not a spec, and is indexed far past that bound so it never repeats an example.
                task.params = task.params.model_copy(update={"num_examples": HUGE_NUM_EXAMPLES})
                self.variants.append((name, index, task))
        check_seed_bands(seeds, [validation_seed(i) for i in range(len(VALIDATION_TASKS))])
        self.task_names = sorted(TRAINING_MIXTURE)
        self.strategies = [
            parse_strategy(n, STRATEGY_VERSIONS[n], p) for n, p in TRAINING_STRATEGIES
        ]

    def batch(self, step: int) -> list[Sequence]:
        rng = np.random.default_rng([self.seed, step])
        out = []
        for i in range(self.batch_size):
            name = self.task_names[int(rng.integers(len(self.task_names)))]
            variants = [v for v in self.variants if v[0] == name]
            _, _, task = variants[int(rng.integers(len(variants)))]
            strategy = self.strategies[int(rng.integers(len(self.strategies)))]
            example_id = step * self.batch_size + i
            example = task.examples(example_id, example_id + 1, self.tokenizer, strategy)[0]
            out.append(
                Sequence(
                    example.prompt_ids,
                    answer_id(self.tokenizer, example.gold[0]),
                    name,
                    strategy.name,
                    self.followups(example.meta, rng),
                )
            )
        return out

    def followups(
        self, meta: dict[str, Any], rng: np.random.Generator
    ) -> tuple[tuple[tuple[int, ...], int], ...]:
        """Every other key of an MQAR context, asked in a random order after the first answer:
        one supervised answer per pair, as zoology trains, instead of one per sequence."""
        pairs = meta.get("pairs")
        if not pairs or not DENSE_MQAR_SUPERVISION:
            return ()
        asked = meta["queryPairIndex"]
        order = [i for i in rng.permutation(len(pairs)).tolist() if i != asked]
        return tuple(
            (tuple(self.tokenizer.encode(pairs[i][0])), answer_id(self.tokenizer, pairs[i][1]))
            for i in order
        )


def validation_sets(tokenizer: Tokenizer, count: int) -> dict[str, dict[str, list[Sequence]]]:
    """task -> strategy -> held-out sequences (seeds from the validation band)."""
    out: dict[str, dict[str, list[Sequence]]] = {}
    for index, (name, params) in enumerate(sorted(VALIDATION_TASKS.items())):
        task = build_task(
            name,
            TASK_VERSIONS[name],
            {**params, "numExamples": count, "seed": validation_seed(index)},
        )
        out[name] = {}
        for strategy_name, strategy_params in TRAINING_STRATEGIES:
            strategy = parse_strategy(
                strategy_name, STRATEGY_VERSIONS[strategy_name], strategy_params
            )
            out[name][strategy_name] = [
                Sequence(e.prompt_ids, answer_id(tokenizer, e.gold[0]), name, strategy_name)
                for e in task.examples(0, count, tokenizer, strategy)
            ]
    return out


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T] left-padded: prompt + answer
    mask: torch.Tensor  # [B, T] bool
    # [B, T], aligned with the logits: the answer at the last prompt column, the newline at the
    # answer column, -100 elsewhere.
    targets: torch.Tensor
    prompt_lengths: torch.Tensor  # [B]

    def to(self, device: str) -> Batch:
        return Batch(
            *(
                t.to(device, non_blocking=True)
                for t in (self.input_ids, self.mask, self.targets, self.prompt_lengths)
            )
        )


def layout(s: Sequence, newline_id: int) -> tuple[list[int], list[int]]:
    """(input ids, targets aligned with them): prompt, answer, then for each followup a newline,
    its query and its answer. Each answer and the newline after it are targets; the last newline
    is only a target, never an input."""
    ids = [*s.prompt_ids, s.answer_id]
    targets = [-100] * (len(s.prompt_ids) - 1) + [s.answer_id, newline_id]
    for query, answer in s.followups:
        ids += [newline_id, *query, answer]
        targets += [-100] * len(query) + [answer, newline_id]
    return ids, targets


def collate(sequences: list[Sequence], pad_id: int, newline_id: int) -> Batch:
    """Left-pad (the models' padding contract keeps pads out of every state). The loss sits on
    each answer and on the newline that follows it, which teaches the model to stop. Sequences
    without followups end with their answer, so the last two columns hold its two targets."""
    laid_out = [layout(s, newline_id) for s in sequences]
    length = max(len(ids) for ids, _ in laid_out)
    b = len(sequences)
    input_ids = torch.full((b, length), pad_id, dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.bool)
    targets = torch.full((b, length), -100, dtype=torch.long)
    for row, (ids, row_targets) in enumerate(laid_out):
        input_ids[row, length - len(ids) :] = torch.tensor(ids)
        mask[row, length - len(ids) :] = True
        targets[row, length - len(ids) :] = torch.tensor(row_targets)
    prompt_lengths = torch.tensor([len(s.prompt_ids) for s in sequences])
    return Batch(input_ids, mask, targets, prompt_lengths)


class BatchDataset(torch.utils.data.IterableDataset):
    """Steps [start, end) split across DataLoader workers by step number."""

    def __init__(self, stream: TrainingStream, start: int, end: int) -> None:
        self.stream, self.start, self.end = stream, start, end

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        tok = self.stream.tokenizer
        for step in range(self.start + worker, self.end, workers):
            yield collate(self.stream.batch(step), tok.pad_id, tok.newline_id)


# ---------------------------------------------------------------------------------------------
# Next-token data: a generated language's training documents
# ---------------------------------------------------------------------------------------------

# held-out documents for validation, inside the validation band (evaluation specs use < 1,000)
LANGUAGE_VALIDATION_SEED = VALIDATION_SEED_BASE + 500_000


def language_of(corpus: str) -> Language:
    ref = resolve_corpus(corpus)
    if ref.language is None:
        raise ValueError(f"corpus {corpus!r}: the zoo trains on a generated language only")
    return ref.language


class CorpusStream:
    """The first ``documents`` of the language's training stream, held in memory; batch ``step``
    is ``batch_size`` of them drawn with replacement from (seed, step), cut to ``seq_len``. Before
    ``curriculum_steps``, documents are cut to ``curriculum_seq_len`` and the batch holds
    proportionally more of them."""

    def __init__(
        self,
        seed: int,
        batch_size: int,
        corpus: str,
        seq_len: int,
        documents: int,
        curriculum_steps: int = 0,
        curriculum_seq_len: int | None = None,
    ):
        self.seed, self.batch_size, self.seq_len = seed, batch_size, seq_len
        self.curriculum_steps = curriculum_steps
        self.curriculum_seq_len = curriculum_seq_len or seq_len
        language = language_of(corpus)
        self.documents = np.concatenate(list(language.blocks(LANGUAGE_TRAIN_SEED, documents)))

    def batch(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step])
        length, count = self.seq_len, self.batch_size
        if step < self.curriculum_steps:
            length = self.curriculum_seq_len
            count = self.batch_size * (self.seq_len // length)
        rows = rng.integers(len(self.documents), size=count)
        return next_token_batch(self.documents[rows, :length])


def next_token_batch(documents: np.ndarray) -> Batch:
    """Every position predicts the next one; the last has no target. No padding."""
    ids = torch.from_numpy(documents.astype(np.int64))
    targets = torch.full_like(ids, -100)
    targets[:, :-1] = ids[:, 1:]
    lengths = torch.full((len(ids),), ids.shape[1])
    return Batch(ids, torch.ones_like(ids, dtype=torch.bool), targets, lengths)


class CorpusBatches(torch.utils.data.IterableDataset):
    def __init__(self, stream: CorpusStream, start: int, end: int) -> None:
        self.stream, self.start, self.end = stream, start, end

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for step in range(self.start + worker, self.end, workers):
            yield self.stream.batch(step)
