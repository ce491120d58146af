"""Per-slice NLL sums for the paper's "AR hits vs Other" perplexity split (docs/protocol.md,
Perplexity slices), and the training bigram-count table it needs. Tested by ``tests/test_slices.py``
(a hand-classified sequence, fast vs reference bigram counting, and shard sums that aggregate
exactly).

The paper gives no code and leaves these choices open; ours:

- Scored tokens are positions ``t >= first_scored`` (at least 1: token 0 has no prediction). Earlier
  tokens still count as context for bigram history (the paper scores the last 1024 of 2048 tokens).
- A token t *repeats* if the bigram ``(ids[t-1], ids[t])`` already ended at some position s < t of
  the same sequence. It is an **AR hit** if it repeats AND the bigram's training count is below
  ``frequency_threshold`` (not memorised). With no table every repeat counts as infrequent.
  **Other** is every other scored token, including repeats of frequent bigrams (paper's wording).
- Distance is ``t - s`` for the MOST RECENT earlier occurrence s: a recurrent state has to carry the
  bigram only since its last appearance, so that gap is what the model must bridge; the first
  occurrence would overstate it whenever the bigram recurs several times.
- Slices: ``ar_hit``, ``other``; ``ar_hit/dist:<lo>-<hi>`` bins AR hits by distance;
  ``ar_hit/freq:<lo>-<hi>`` bins EVERY repeat and ``other/freq:<lo>-<hi>`` every non-repeat by
  training count (the bins replace the threshold, so frequent repeats land in the high bins, as on
  Figure 3's frequency axis). Bins are ``[lo, hi)`` over the given edges plus a last
  ``<last>-inf`` bin; values below the first edge are not binned. Frequency bins are emitted only
  when a bigram table is configured. Every slice is emitted, empty ones with count 0.
- Sums, not means, so shards aggregate. Each token's NLL is rounded to a multiple of 2^-20 nats
  (error < 5e-7 per token) before summing: every partial sum is then an exact float64 (up to 2^33
  nats in total), so shard sums added in ANY order, in Python or in Postgres (float8 or numeric),
  give bit-identical totals.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .data_roots import check_data_path

NLL_QUANTUM_BITS = 20
_SCALE = 2**NLL_QUANTUM_BITS
_ID_BITS = 32


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceConfig:
    frequency_threshold: int
    frequency_bin_edges: tuple[int, ...]
    distance_bin_edges: tuple[int, ...]
    bigram_counts: str | None


def slice_config(settings: Any) -> SliceConfig:
    """Read the contract's ``SliceSettings`` (attributes) or a dict (snake_case or camelCase)."""

    def get(snake: str) -> Any:
        if isinstance(settings, Mapping):
            camel = snake.split("_")[0] + "".join(w.title() for w in snake.split("_")[1:])
            if snake in settings:
                return settings[snake]
            if camel in settings:
                return settings[camel]
            if snake == "bigram_counts":
                return None
            raise ValueError(f"slice settings: missing {snake!r} (or {camel!r})")
        return getattr(settings, snake)

    config = SliceConfig(
        frequency_threshold=int(get("frequency_threshold")),
        frequency_bin_edges=tuple(int(e) for e in get("frequency_bin_edges")),
        distance_bin_edges=tuple(int(e) for e in get("distance_bin_edges")),
        bigram_counts=get("bigram_counts"),
    )
    for name in ("frequency_bin_edges", "distance_bin_edges"):
        edges = getattr(config, name)
        if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(
                f"slice settings: {name} must be non-empty and strictly increasing, "
                f"got {list(edges)}"
            )
    if config.frequency_threshold < 1:
        raise ValueError(
            f"slice settings: frequency_threshold must be >= 1, got {config.frequency_threshold}"
        )
    return config


def bin_labels(edges: Sequence[int]) -> list[str]:
    bounds = [*edges, None]
    return [
        f"{lo}-{'inf' if hi is None else hi}" for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]


def bin_index(value: int, edges: Sequence[int]) -> int | None:
    """Index of the ``[lo, hi)`` bin holding ``value`` (the last bin is open); None below the
    first edge."""
    if value < edges[0]:
        return None
    index = 0
    while index + 1 < len(edges) and value >= edges[index + 1]:
        index += 1
    return index


# --- bigram table -------------------------------------------------------------------------------


def _bigram_keys(ids: np.ndarray) -> np.ndarray:
    ids = ids.astype(np.uint64)
    return (ids[:-1] << np.uint64(_ID_BITS)) | ids[1:]


@dataclass(frozen=True)
class BigramCounts:
    """Training bigram counts as sorted packed keys ``(first << 32) | second`` with their counts."""

    keys: np.ndarray  # uint64, sorted, unique
    counts: np.ndarray  # int64

    def lookup(self, firsts: Sequence[int], seconds: Sequence[int]) -> np.ndarray:
        query = (np.asarray(firsts, dtype=np.uint64) << np.uint64(_ID_BITS)) | np.asarray(
            seconds, dtype=np.uint64
        )
        if len(self.keys) == 0:
            return np.zeros(len(query), dtype=np.int64)
        # searchsorted gives len(keys) past the end; clamping is safe since keys[-1] < query there
        index = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.where(self.keys[index] == query, self.counts[index], 0).astype(np.int64)

    def count(self, first: int, second: int) -> int:
        return int(self.lookup([first], [second])[0])

    def as_dict(self) -> dict[tuple[int, int], int]:
        mask = np.uint64((1 << _ID_BITS) - 1)
        return {
            (int(k >> np.uint64(_ID_BITS)), int(k & mask)): int(c)
            for k, c in zip(self.keys, self.counts, strict=True)
        }

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, keys=self.keys, counts=self.counts)


def _merge(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(keys, return_inverse=True)
    merged = np.zeros(len(unique), dtype=np.int64)
    np.add.at(merged, inverse, counts)
    return unique, merged


def build_bigram_counts(
    token_stream: Iterable[Sequence[int]], chunk_tokens: int = 1 << 24
) -> BigramCounts:
    """Count bigrams within each document of ``token_stream`` (never across documents), merging
    sorted chunks so memory stays bounded by the number of distinct bigrams plus one chunk."""
    keys = np.zeros(0, dtype=np.uint64)
    counts = np.zeros(0, dtype=np.int64)
    pending: list[np.ndarray] = []
    pending_size = 0

    def flush() -> None:
        nonlocal keys, counts, pending, pending_size
        if not pending:
            return
        chunk_keys, chunk_counts = np.unique(np.concatenate(pending), return_counts=True)
        keys, counts = _merge(
            np.concatenate([keys, chunk_keys]), np.concatenate([counts, chunk_counts])
        )
        pending, pending_size = [], 0

    for document in token_stream:
        ids = np.asarray(document, dtype=np.int64)
        if ids.ndim != 1:
            raise ValueError(f"token_stream must yield 1-D token sequences, got shape {ids.shape}")
        if len(ids) and (ids.min() < 0 or ids.max() >= 1 << _ID_BITS):
            raise ValueError("token ids must lie in [0, 2^32)")
        if len(ids) >= 2:
            pending.append(_bigram_keys(ids))
            pending_size += len(ids) - 1
        if pending_size >= chunk_tokens:
            flush()
    flush()
    return BigramCounts(keys, counts)


def build_bigram_counts_reference(
    token_stream: Iterable[Sequence[int]],
) -> Counter[tuple[int, int]]:
    """The slow, obvious twin of ``build_bigram_counts``."""
    counter: Counter[tuple[int, int]] = Counter()
    for document in token_stream:
        ids = list(document)
        counter.update(zip(ids, ids[1:], strict=False))
    return counter


def load_bigram_counts(path: str | Path) -> BigramCounts:
    with np.load(path) as data:
        keys, counts = data["keys"].astype(np.uint64), data["counts"].astype(np.int64)
    if len(keys) != len(counts) or np.any(keys[1:] <= keys[:-1]):
        raise ValueError(
            f"{path}: not a bigram table (keys must be sorted, unique, one count each)"
        )
    return BigramCounts(keys, counts)


def resolve_bigram_path(path: str) -> Path:
    """Relative paths are under the worker's data root, ``TWICE_DATA_DIR`` (else the cwd), and
    may not leave it (``../../etc/passwd``); an absolute path must lie under an allowed data
    root."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return check_data_path(candidate, "slices.bigramCounts")
    root = Path(os.environ.get("TWICE_DATA_DIR", ".")).resolve()
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(
            f"slice settings: bigramCounts {path!r} leaves the data root {root}; "
            "name a file under it"
        )
    return resolved


@lru_cache(maxsize=4)
def _cached_table(path: str, mtime_ns: int) -> BigramCounts:
    return load_bigram_counts(path)


def table_for(config: SliceConfig) -> BigramCounts | None:
    if config.bigram_counts is None:
        return None
    path = resolve_bigram_path(config.bigram_counts)
    if not path.is_file():
        raise FileNotFoundError(f"slice settings: bigram_counts file {path} does not exist")
    return _cached_table(str(path), path.stat().st_mtime_ns)


# --- classification and sums --------------------------------------------------------------------


@dataclass(frozen=True)
class TokenClass:
    position: int
    repeat: bool  # the bigram ending here ended earlier in the sequence
    distance: int | None  # t - (most recent earlier end position), None if not a repeat
    train_count: int  # the bigram's training count (0 without a table)
    ar_hit: bool


def classify_tokens(
    ids: Sequence[int], config: SliceConfig, table: BigramCounts | None, first_scored: int = 1
) -> list[TokenClass]:
    """One ``TokenClass`` per scored position, in order."""
    first_scored = max(1, first_scored)
    train_counts = (
        table.lookup(ids[:-1], ids[1:])
        if table is not None and len(ids) > 1
        else np.zeros(max(len(ids) - 1, 0), np.int64)
    )
    last_end: dict[tuple[int, int], int] = {}
    classes = []
    for t in range(1, len(ids)):
        bigram = (ids[t - 1], ids[t])
        previous = last_end.get(bigram)
        last_end[bigram] = t
        if t < first_scored:
            continue
        count = int(train_counts[t - 1])
        repeat = previous is not None
        classes.append(
            TokenClass(
                position=t,
                repeat=repeat,
                distance=None if previous is None else t - previous,
                train_count=count,
                ar_hit=repeat and (table is None or count < config.frequency_threshold),
            )
        )
    return classes


def quantize_nll(value: float, position: int) -> int:
    if not math.isfinite(value) or value < -1e-6:
        raise ValueError(f"nll[{position}] must be a finite non-negative number, got {value!r}")
    return round(max(value, 0.0) * _SCALE)


def slice_sums(
    prompt_ids: Sequence[int], nll: Sequence[float], settings: Any, first_scored: int = 1
) -> list[dict[str, Any]]:
    """``nll[t]`` is the NLL of token t given tokens < t (``nll[0]`` is ignored). The engine's
    ``prompt_nll`` form, one entry shorter (entry j is token j + 1), is accepted too: the lengths
    tell the two apart. Returns ``[{"slice", "nllSum", "tokenCount"}]`` in a fixed order."""
    if len(prompt_ids) and len(nll) == len(prompt_ids) - 1:
        nll = [math.nan, *nll]
    if len(nll) != len(prompt_ids):
        raise ValueError(
            f"nll has {len(nll)} entries but prompt_ids has {len(prompt_ids)} "
            "(expected equal, or one fewer)"
        )
    config = slice_config(settings)
    table = table_for(config)

    totals: dict[str, list[int]] = {}  # slice -> [quantized nll sum, token count]

    def declare(names: Iterable[str]) -> None:
        for name in names:
            totals[name] = [0, 0]

    distance_labels = bin_labels(config.distance_bin_edges)
    frequency_labels = bin_labels(config.frequency_bin_edges)
    declare(["ar_hit", "other"])
    if table is not None:
        declare(f"ar_hit/freq:{label}" for label in frequency_labels)
        declare(f"other/freq:{label}" for label in frequency_labels)
    declare(f"ar_hit/dist:{label}" for label in distance_labels)

    def add(name: str, quantum: int) -> None:
        totals[name][0] += quantum
        totals[name][1] += 1

    for token in classify_tokens(prompt_ids, config, table, first_scored):
        quantum = quantize_nll(nll[token.position], token.position)
        add("ar_hit" if token.ar_hit else "other", quantum)
        if token.ar_hit:
            index = bin_index(token.distance, config.distance_bin_edges)  # type: ignore[arg-type]
            if index is not None:
                add(f"ar_hit/dist:{distance_labels[index]}", quantum)
        if table is not None:
            index = bin_index(token.train_count, config.frequency_bin_edges)
            if index is not None:
                family = "ar_hit" if token.repeat else "other"
                add(f"{family}/freq:{frequency_labels[index]}", quantum)

    return [
        {"slice": name, "nllSum": quantum_sum / _SCALE, "tokenCount": count}
        for name, (quantum_sum, count) in totals.items()
    ]


def merge_slice_sums(parts: Iterable[Iterable[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Add per-sequence or per-shard slice sums (what the database does with its rows)."""
    merged: dict[str, list[float]] = {}
    for part in parts:
        for entry in part:
            totals = merged.setdefault(entry["slice"], [0.0, 0])
            totals[0] += entry["nllSum"]
            totals[1] += entry["tokenCount"]
    return [{"slice": name, "nllSum": s, "tokenCount": int(c)} for name, (s, c) in merged.items()]


def perplexity(entry: Mapping[str, Any]) -> float:
    return math.exp(entry["nllSum"] / entry["tokenCount"]) if entry["tokenCount"] else math.nan
