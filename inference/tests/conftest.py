"""Shared fixtures: one CPU thread and fixed seeds for every test, a tiny but real recurrent model
(gated diagonal linear recurrence, float64) whose parallel ``forward`` and recurrent
``prefill``/``step`` are independent implementations of one function, a word tokenizer and a small
key-value recall task. These are test doubles for the engine and activities tests only."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from twice_inference.protocols import Example, StrategySpec, Tokenizer


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    random.seed(0)


@pytest.fixture(autouse=True)
def _data_roots(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests keep their data in pytest's temporary folders and the repository's fixtures: allow
    exactly those (tests/test_data_roots.py checks the defaults and the refusals)."""
    roots = [tmp_path_factory.getbasetemp(), Path(__file__).resolve().parents[2]]
    monkeypatch.setenv("TWICE_DATA_ROOTS", os.pathsep.join(map(str, roots)))


# Tests marked ``triton_interpreter`` run Triton kernels on the CPU, under Triton's interpreter.
# triton.jit (Triton's own library functions included) reads TRITON_INTERPRET once, when Triton
# is imported, so the interpreter cannot be switched on for some tests of a process and off for
# others: setting it for the whole run would make a GPU run time interpreted kernels. Unless this
# process already interprets, the marked tests therefore run together in one child pytest with
# TRITON_INTERPRET=1, and each reports the outcome it had there.
INTERPRETER_MARK = "triton_interpreter"
_RESULTS_ENV = "TWICE_INTERPRETER_RESULTS"


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{INTERPRETER_MARK}: runs Triton kernels under the CPU interpreter"
    )
    if _interpreting():
        from triton_interpreter import patch_triton_interpreter

        patch_triton_interpreter()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_interpreter_items] = [
        item.nodeid for item in items if item.get_closest_marker(INTERPRETER_MARK)
    ]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    results = os.environ.get(_RESULTS_ENV)
    if results and (report.when == "call" or report.outcome != "passed"):
        line = {"nodeid": report.nodeid, "outcome": report.outcome, "text": report.longreprtext}
        with open(results, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def _interpreter_outcomes(config: pytest.Config) -> dict[str, list[dict[str, str]]]:
    if _interpreter_outcomes_key not in config.stash:
        nodeids = config.stash[_interpreter_items]
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "results.jsonl"
            env = {**os.environ, "TRITON_INTERPRET": "1", _RESULTS_ENV: str(results)}
            args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *nodeids]
            child = subprocess.run(
                [sys.executable, *args], cwd=config.rootpath, env=env, capture_output=True
            )
            outcomes: dict[str, list[dict[str, str]]] = {}
            if results.is_file():
                for line in results.read_text(encoding="utf-8").splitlines():
                    row = json.loads(line)
                    outcomes.setdefault(row["nodeid"], []).append(row)
            outcomes["<output>"] = [{"text": child.stdout.decode()[-4000:]}]
        config.stash[_interpreter_outcomes_key] = outcomes
    return config.stash[_interpreter_outcomes_key]


_interpreter_items = pytest.StashKey[list[str]]()
_interpreter_outcomes_key = pytest.StashKey[dict[str, list[dict[str, str]]]]()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if _interpreting() or not pyfuncitem.get_closest_marker(INTERPRETER_MARK):
        return None
    outcomes = _interpreter_outcomes(pyfuncitem.config)
    reports = outcomes.get(pyfuncitem.nodeid)
    if not reports:
        output = outcomes["<output>"][0]["text"]
        pytest.fail(f"not run by the interpreter child process:\n{output}", pytrace=False)
    for report in reports:
        if report["outcome"] == "failed":
            pytest.fail(f"under TRITON_INTERPRET=1:\n{report['text']}", pytrace=False)
    for report in reports:
        if report["outcome"] == "skipped":
            pytest.skip(report["text"])
    return True


@dataclass
class RecurrentState:
    hidden: torch.Tensor  # [B, D]

    def nbytes(self) -> int:
        return self.hidden.numel() * self.hidden.element_size()


class TinyRecurrentLM(nn.Module):
    """Embedding -> gated diagonal linear recurrence h_t = a*h_{t-1} + g_t*u_t -> tanh mix -> head.

    Padding (mask 0) leaves the state untouched, so left pads never enter it. ``forward`` computes
    every h_t at once as a decay-weighted sum over earlier real tokens; ``prefill``/``step`` run the
    recurrence one token at a time.
    """

    family = "tiny_recurrent"

    def __init__(self, vocab_size: int = 32, dim: int = 16, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.vocab_size = vocab_size
        self.embed = nn.Parameter(
            torch.randn(vocab_size, dim, generator=generator, dtype=torch.float64)
        )
        self.w_u = nn.Parameter(
            torch.randn(dim, dim, generator=generator, dtype=torch.float64) / dim**0.5
        )
        self.w_g = nn.Parameter(
            torch.randn(dim, dim, generator=generator, dtype=torch.float64) / dim**0.5
        )
        self.decay_logit = nn.Parameter(torch.randn(dim, generator=generator, dtype=torch.float64))
        self.w_o = nn.Parameter(
            torch.randn(dim, dim, generator=generator, dtype=torch.float64) / dim**0.5
        )
        self.head = nn.Parameter(
            torch.randn(dim, vocab_size, generator=generator, dtype=torch.float64) * 2
        )

    def _inputs(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed[ids]
        return x, torch.sigmoid(x @ self.w_g) * (x @ self.w_u)

    def _logits(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(hidden @ self.w_o + x) @ self.head

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones_like(input_ids)
        m = mask.to(torch.float64)
        x, v = self._inputs(input_ids)
        real_count = m.cumsum(dim=1)  # decay applies once per real token, never per pad
        steps = real_count[:, :, None] - real_count[:, None, :]  # [B, t, s]
        width = input_ids.shape[1]
        causal = torch.tril(torch.ones(width, width, dtype=torch.bool, device=input_ids.device))
        log_a = torch.nn.functional.logsigmoid(self.decay_logit)
        weights = torch.exp(steps[..., None] * log_a) * (
            causal[None, :, :, None] * m[:, None, :, None]
        )
        hidden = torch.einsum("btsd,bsd->btd", weights, v)
        return self._logits(x, hidden)

    def _advance(
        self, ids: torch.Tensor, m: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, v = self._inputs(ids)
        a = torch.sigmoid(self.decay_logit)
        updated = a * hidden + v
        hidden = torch.where(m[:, None] > 0, updated, hidden)
        return self._logits(x, hidden), hidden

    def prefill(
        self, input_ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, RecurrentState]:
        hidden = self.embed.new_zeros(input_ids.shape[0], self.embed.shape[1])
        logits = torch.empty(0)
        for t in range(input_ids.shape[1]):
            logits, hidden = self._advance(input_ids[:, t], mask[:, t].to(torch.float64), hidden)
        return logits, RecurrentState(hidden)

    def step(
        self, token_ids: torch.Tensor, state: RecurrentState
    ) -> tuple[torch.Tensor, RecurrentState]:
        ones = self.embed.new_ones(token_ids.shape[0])
        logits, hidden = self._advance(token_ids, ones, state.hidden)
        return logits, RecurrentState(hidden)

    def state_size_bytes(self, batch_size: int = 1, prompt_len: int = 0) -> int:
        return batch_size * self.embed.shape[1] * self.embed.element_size()


class WordTokenizer:
    """Whitespace words over a fixed vocabulary; "\\n" is its own token."""

    name = "words-test"

    def __init__(self, words: list[str]) -> None:
        self.vocab = ["<pad>", "\n", *words]
        self.index = {word: i for i, word in enumerate(self.vocab)}
        self.vocab_size = len(self.vocab)
        self.pad_id = 0
        self.newline_id = 1

    def encode(self, text: str) -> list[int]:
        return [self.index[word] for word in re.findall(r"\n|[^\s]+", text)]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.vocab[i] for i in ids)


class KeyValueRecallTask:
    """Key-value pairs then a query key; the gold is the value. ``jrt_prompt`` repeats the pairs
    before the query, as JRT-Prompt repeats the context. Examples depend only on (seed, id)."""

    name = "kv_recall_test"
    version = 1

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def num_examples(self) -> int:
        return int(self.params["numExamples"])

    def data_digest(self) -> str:
        canonical = json.dumps([self.name, self.version, self.params], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def examples(
        self, start: int, end: int, tokenizer: Tokenizer, strategy: StrategySpec
    ) -> list[Example]:
        if not 0 <= start < end <= self.num_examples():
            raise ValueError(f"example range [{start}, {end}) outside [0, {self.num_examples()})")
        out = []
        for example_id in range(start, end):
            rng = random.Random(self.params["seed"] * 1_000_003 + example_id)
            pairs = rng.randint(1, 4)
            keys = rng.sample([f"k{i}" for i in range(10)], pairs)
            values = [f"v{rng.randrange(10)}" for _ in keys]
            context = " ".join(f"{k} {v}" for k, v in zip(keys, values, strict=True))
            repeats = strategy.params.get("repeats", 2) if strategy.name == "jrt_prompt" else 1
            query = rng.randrange(pairs)
            text = " \n ".join([context] * repeats) + f" {keys[query]}"
            out.append(Example(example_id, tokenizer.encode(text), [values[query]], text))
        return out

    def score(self, prediction: str, gold: list[str]) -> float:
        return float(any(g.lower() in prediction.lower() for g in gold))


TEST_WORDS = [f"k{i}" for i in range(10)] + [f"v{i}" for i in range(10)]


@pytest.fixture
def tiny_model() -> TinyRecurrentLM:
    return TinyRecurrentLM(vocab_size=len(TEST_WORDS) + 2, dim=16, seed=0)


@pytest.fixture
def word_tokenizer() -> WordTokenizer:
    return WordTokenizer(TEST_WORDS)


def zoo_shard_payload(
    model: str,
    task: dict[str, Any],
    strategy: dict[str, Any],
    start: int,
    end: int,
    *,
    scorer: str = "contains",
) -> dict[str, Any]:
    """A run_shard input for a committed zoo model at its manifest revision, on the CPU."""
    zoo = Path(__file__).parents[1] / "twice_inference" / "zoo" / "manifest.json"
    sha = json.loads(zoo.read_text())["models"][model]["sha256"]
    return {
        "cellKey": "e" * 64,
        "shardIndex": start,
        "exampleStart": start,
        "exampleEnd": end,
        "model": {"name": model, "revision": f"sha256:{sha}"},
        "task": task,
        "strategy": strategy,
        "generation": {
            "maxNewTokens": 4,
            "stopAtNewline": True,
            "batchSize": 4,
            "maxPromptTokens": 2000,
        },
        "scorer": {"name": scorer, "version": 1},
        "slices": None,
        "device": "cpu",
    }
