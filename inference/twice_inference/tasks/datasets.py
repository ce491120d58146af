"""The paper's six recall tasks (FDA, SWDE, SQuAD, TriviaQA, NQ, DROP) read from local copies of the
``hazyresearch/*`` validation splits (docs/protocol.md, Recall tasks).

Owns the readers (JSON lines, or parquet when pyarrow is importable), the per-task schema checks,
the skip rule for unusable anchors, truncation with the evaluated model's tokenizer, and the mapping
from strategy to prompt. Tested by ``tests/test_datasets.py`` on fixture rows under
``tests/fixtures/recall/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..protocols import Example, StrategySpec, Tokenizer
from . import templates
from .data_roots import check_data_path, hub_cache
from .scoring import contains
from .strategies import parse_strategy
from .truncation import truncate_context, usable_anchors

# v2: HF decode clean-up, released no-anchor window, BOS counted (see truncation.py)
TASK_VERSION = 2
Doc = dict[str, Any]


class RecallTaskParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dataDir: str | None = Field(None, min_length=1)
    limit: int | None = Field(
        None, ge=1, le=1_000_000, description="first N rows of the split, before skips"
    )
    contextTokens: int = Field(
        950, ge=1, le=32_768, description="truncation budget in model tokens"
    )


class NQTaskParams(RecallTaskParams):
    variant: Literal[512, 1024, 2048] = 1024


@dataclass(frozen=True)
class DatasetSpec:
    """What differs between the six tasks: where the data lives, its fields, which field is cut
    around which anchors, and what the golds are."""

    name: str
    hf_id: Callable[[RecallTaskParams], str]
    fields: Mapping[str, type]  # required field -> str or list (of str)
    cut_field: str
    anchors: Callable[[Doc], list[str]]
    golds: Callable[[Doc], list[str]]
    prepare: Callable[[Doc], Doc] = lambda doc: doc  # tokenizer-independent cleanup before cutting
    params_model: type[RecallTaskParams] = RecallTaskParams


def _fixed(hf_id: str) -> Callable[[RecallTaskParams], str]:
    return lambda params: hf_id


def _nq_hf_id(params: RecallTaskParams) -> str:
    # NQ's spec validates its params with NQTaskParams (params_model below)
    return f"hazyresearch/based_nq_{cast(NQTaskParams, params).variant}"


def _swde_prepare(doc: Doc) -> Doc:
    # The released task drops SWDE's built-in "Summary of information above..." prompt when loading,
    # so truncation sees only the page text.
    return {**doc, "text": templates.swde_document(doc["text"])}


_KEY_VALUE = {"text": str, "key": str, "value": str}


def _answers(doc: Doc) -> list[str]:
    # An empty gold would match every prediction under `contains`; the released code would give
    # that free credit, we drop it (a row left with no gold is skipped as "no_answers").
    return [answer for answer in doc["answers"] if answer]


_QA = {"context": str, "question": str, "orig_question": str, "answers": list}

SPECS: dict[str, DatasetSpec] = {
    "fda": DatasetSpec(
        "fda",
        _fixed("hazyresearch/based-fda"),
        _KEY_VALUE,
        "text",
        anchors=lambda d: [d["key"], d["value"]],
        golds=lambda d: [d["value"]],
    ),
    "swde": DatasetSpec(
        "swde",
        _fixed("hazyresearch/based-swde-v2"),
        _KEY_VALUE,
        "text",
        anchors=lambda d: [d["key"], d["value"]],
        golds=lambda d: [d["value"]],
        prepare=_swde_prepare,
    ),
    "squad": DatasetSpec(
        "squad",
        _fixed("hazyresearch/based-squad"),
        {"text": str, "value": str, "context": str, "question": str},
        "text",
        anchors=lambda d: [d["value"]],
        golds=lambda d: [d["value"]],
    ),
    "triviaqa": DatasetSpec(
        "triviaqa",
        _fixed("hazyresearch/based_triviaqa"),
        _QA,
        "context",
        anchors=lambda d: [],
        golds=_answers,
    ),
    "nq": DatasetSpec(
        "nq",
        _nq_hf_id,
        _QA,
        "context",
        anchors=lambda d: [d["answers"][0]],
        golds=_answers,
        params_model=NQTaskParams,
    ),
    "drop": DatasetSpec(
        "drop",
        _fixed("hazyresearch/based_drop"),
        _QA,
        "context",
        anchors=lambda d: [],
        golds=_answers,
    ),
}


# --- reading ------------------------------------------------------------------------------------


def candidate_data_dirs(hf_id: str, data_dir: str | None) -> list[Path]:
    if data_dir is not None:
        return [check_data_path(data_dir, "params.dataDir")]
    candidates = []
    if root := os.environ.get("TWICE_DATA_DIR"):
        candidates.append(Path(root) / hf_id)
    hub = hub_cache()
    snapshots = hub / ("datasets--" + hf_id.replace("/", "--")) / "snapshots"
    if snapshots.is_dir():
        candidates.extend(sorted(p for p in snapshots.iterdir() if p.is_dir()))
    else:
        candidates.append(snapshots / "*")
    return candidates


def split_files(directory: Path) -> list[Path]:
    """The validation split's files: ``validation.jsonl``, else parquet shards (validation ones
    if the names say so, HF's ``data/validation-00000-of-00001.parquet`` layout)."""
    jsonl = directory / "validation.jsonl"
    if jsonl.is_file():
        return [jsonl]
    parquet = sorted(directory.rglob("*.parquet"))
    validation = [p for p in parquet if "validation" in p.name]
    return validation or parquet


def _read_jsonl(path: Path) -> list[Doc]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(
                    f"{path}:{line_number}: expected a JSON object, got {type(row).__name__}"
                )
            rows.append(row)
    return rows


def _read_parquet(path: Path) -> list[Doc]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            f"{path}: reading parquet needs pyarrow, which is not installed; install it or convert "
            "the split to validation.jsonl"
        ) from None
    return pq.read_table(path).to_pylist()


def read_split(directory: Path) -> tuple[list[Doc], list[Path]]:
    files = split_files(directory)
    if not files:
        raise FileNotFoundError(f"{directory}: no validation.jsonl or *.parquet file")
    rows: list[Doc] = []
    for path in files:
        rows.extend(_read_jsonl(path) if path.suffix == ".jsonl" else _read_parquet(path))
    return rows, files


def check_row(spec: DatasetSpec, row: Doc, where: str) -> None:
    for name, kind in spec.fields.items():
        if name not in row:
            raise ValueError(
                f"{where}: missing field {name!r} (task {spec.name} needs {sorted(spec.fields)})"
            )
        value = row[name]
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(
                    f"{where}: field {name!r} must be a list of strings, got {value!r:.80}"
                )
        elif not isinstance(value, str):
            raise ValueError(
                f"{where}: field {name!r} must be a string, got {type(value).__name__}"
            )
    if "question" in spec.fields and not row["question"].strip():
        # an empty cloze stem would make the released "remove trailing question" loop spin forever
        raise ValueError(f"{where}: field 'question' is empty")


# --- the task -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptDoc:
    row_index: int  # position in the split file(s)
    doc: Doc


@dataclass
class RecallTask:
    """One of the six tasks over one local split. ``example_id`` is the position among kept docs
    (contiguous, so shards are plain ranges); ``meta.rowIndex`` is the row in the split."""

    spec: DatasetSpec
    params: RecallTaskParams
    docs: list[KeptDoc]
    skipped: dict[str, int]  # reason -> count of rows the paper's rules drop
    digest: str
    source_files: list[Path] = field(default_factory=list)
    version: int = TASK_VERSION

    @property
    def name(self) -> str:
        return self.spec.name

    def num_examples(self) -> int:
        return len(self.docs)

    def data_digest(self) -> str:
        return self.digest

    def score(self, prediction: str, gold: list[str]) -> float:
        return contains(prediction, gold)

    def examples(
        self, start: int, end: int, tokenizer: Tokenizer, strategy: StrategySpec
    ) -> list[Example]:
        if not 0 <= start <= end <= self.num_examples():
            raise ValueError(
                f"task {self.name}: example range [{start}, {end}) "
                f"outside [0, {self.num_examples()}]"
            )
        strategy = parse_strategy(strategy.name, strategy.version, strategy.params)
        return [self._example(i, tokenizer, strategy) for i in range(start, end)]

    def _cut(self, index: int, tokenizer: Tokenizer) -> tuple[Doc, dict[str, Any]]:
        kept = self.docs[index]
        cut = truncate_context(
            kept.doc[self.spec.cut_field],
            self.spec.anchors(kept.doc),
            tokenizer,
            self.params.contextTokens,
        )
        meta: dict[str, Any] = {
            "rowIndex": kept.row_index,
            "windowStart": cut.start_token,
            "windowEnd": cut.end_token,
            "docTokens": cut.doc_tokens,
        }
        if "doc_id" in kept.doc:
            meta["docId"] = kept.doc["doc_id"]
        if self.spec.anchors(kept.doc) and not cut.anchor_found:
            # our deviation from the released code (see truncation.py): counted, not hidden
            meta["anchorMissing"] = True
        return {**kept.doc, self.spec.cut_field: cut.text}, meta

    def _prompt(self, index: int, doc: Doc, tokenizer: Tokenizer, strategy: StrategySpec) -> str:
        task_templates = templates.TEMPLATES[self.name]
        name, params = strategy.name, strategy.params
        if name in ("default", "jrt_rnn_left_pad", "jrt_rnn_iterate"):
            return task_templates.default(doc)
        if name == "jrt_prompt":
            return task_templates.repeated(doc, params["repeats"])
        if name == "jrt_rnn_read2x":
            return task_templates.repeated(doc, 2)
        if name == "question_first":
            return task_templates.question_first(doc)
        if name == "few_shot":
            # Each shot is cut to the same budget, so k shots make a prompt of about k + 1
            # budgets; the engine's left truncation (max_prompt_tokens) drops the oldest first.
            solved = []
            for other in self._shot_indices(index, params["shots"]):
                shot_doc, _ = self._cut(other, tokenizer)
                solved.append((task_templates.default(shot_doc), self.spec.golds(shot_doc)[0]))
            return templates.few_shot_prompt(solved, task_templates.default(doc))
        raise ValueError(f"task {self.name}: strategy {name!r} has no prompt layout here")

    def _shot_indices(self, index: int, shots: int) -> list[int]:
        """Other docs, drawn by a generator seeded from (task, example), so a retried shard
        regenerates the same shots. String seeds hash with sha512, independent of PYTHONHASHSEED."""
        others = [i for i in range(self.num_examples()) if i != index]
        if shots > len(others):
            raise ValueError(
                f"task {self.name}: few_shot shots={shots} but only {len(others)} other docs"
            )
        return random.Random(f"{self.name}:{self.digest}:{index}").sample(others, shots)

    def _example(self, index: int, tokenizer: Tokenizer, strategy: StrategySpec) -> Example:
        doc, meta = self._cut(index, tokenizer)
        prompt = self._prompt(index, doc, tokenizer, strategy)
        return Example(
            example_id=index,
            prompt_ids=tokenizer.encode(prompt),
            gold=self.spec.golds(doc),
            prompt_text=prompt,
            meta=meta,
        )


def _digest(files: list[Path], task: str, params: RecallTaskParams) -> str:
    """sha256 over the split's bytes and the params that change examples. ``dataDir`` is left out:
    the same bytes in another directory are the same data."""
    hasher = hashlib.sha256()
    for path in files:
        hasher.update(path.name.encode() + b"\0")
        hasher.update(path.read_bytes())
    settings = params.model_dump(exclude={"dataDir"})
    hasher.update(
        json.dumps({"task": task, "version": TASK_VERSION, **settings}, sort_keys=True).encode()
    )
    return hasher.hexdigest()


# Validation-split sizes in the paper's Table 7; NQ's pre-cut sets share one size.
PAPER_SIZES = {"fda": 1102, "swde": 1111, "squad": 2984, "triviaqa": 1698, "nq": 3157, "drop": 2084}


def warn_on_paper_size(task: str, hf_id: str, rows: int) -> None:
    """A full split whose size differs from Table 7 is another version of the data: the numbers
    will not be the paper's. Warned, not refused: a newer release may be what the user wants."""
    expected = PAPER_SIZES[task]
    if rows != expected:
        warnings.warn(
            f"task {task!r}: {hf_id} has {rows} rows, the paper's Table 7 has {expected}; "
            "results will not be comparable with the paper's",
            stacklevel=3,
        )


def build_dataset_task(name: str, version: int, params: dict[str, Any]) -> RecallTask:
    if name not in SPECS:
        raise ValueError(f"unknown recall task {name!r}; known: {sorted(SPECS)}")
    if version != TASK_VERSION:
        raise ValueError(
            f"task {name!r} version {version!r} requested, this worker implements {TASK_VERSION}"
        )
    spec = SPECS[name]
    try:
        parsed = spec.params_model.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        raise ValueError(f"task {name!r} params: {problems}") from None

    hf_id = spec.hf_id(parsed)
    looked = candidate_data_dirs(hf_id, parsed.dataDir)
    directory = next((d for d in looked if d.is_dir() and split_files(d)), None)
    if directory is None:
        raise FileNotFoundError(
            f"task {name!r}: no local copy of {hf_id} (validation.jsonl or *.parquet); looked in: "
            f"{', '.join(map(str, looked))}. Set params.dataDir, or TWICE_DATA_DIR=<dir> with "
            f"<dir>/{hf_id}/."
        )
    rows, files = read_split(directory)
    if parsed.limit is None:
        warn_on_paper_size(name, hf_id, len(rows))
    else:
        rows = rows[: parsed.limit]

    kept: list[KeptDoc] = []
    skipped: Counter[str] = Counter()
    for row_index, row in enumerate(rows):
        check_row(spec, row, f"{directory} row {row_index}")
        if not spec.golds(row):
            skipped["no_answers"] += 1  # the released code would crash; nothing to score against
            continue
        if not usable_anchors(spec.anchors(row)):
            skipped["short_anchor"] += 1  # the paper's rule: anchor empty or 1 character
            continue
        kept.append(KeptDoc(row_index, spec.prepare(row)))
    if not kept:
        raise ValueError(f"task {name!r}: every row of {directory} was skipped ({dict(skipped)})")
    return RecallTask(spec, parsed, kept, dict(skipped), _digest(files, name, parsed), files)
