"""``twice bigrams build <corpus>``: count a training corpus's bigrams once, into a
content-addressed table the perplexity slices read (docs/protocol.md, Perplexity protocol).

    python -m twice_inference.tasks.bigrams build synthetic:repeats-v1
    python -m twice_inference.tasks.bigrams build corpus.jsonl --tokenizer gpt2
    python -m twice_inference.tasks.bigrams build corpus.npz

Corpora: a generated language (its training stream), a JSONL file (``{"text"}`` or ``{"ids"}``
per line), or an ``.npz`` of token ids (``ids``: every document's ids back to back, ``offsets``:
where each document starts, ascending from 0), the fast form for tens of millions of documents.
Bigrams never cross a document boundary. The table lands in ``$TWICE_CACHE/bigrams/<digest>.npz``,
the digest covering the corpus bytes (or the language), the tokenizer and the counting version,
so a second build of the same corpus only finds it. Counting is vectorised: a chunk of documents
becomes one array of packed keys, sorted and reduced, and sorted chunks are merged.
Tested by ``tests/test_bigrams.py``; ``bench/bigrams.py`` measures documents/s.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .corpus import CorpusRef, corpus_digest, parse_document, resolve_corpus
from .language import TRAIN_DOCUMENTS, TRAIN_SEED
from .slices import _ID_BITS, BigramCounts, load_bigram_counts

COUNTING_VERSION = 1
CHUNK_TOKENS = 1 << 24  # packed keys per sort: 128 MiB of uint64
JSONL_BATCH = 65_536  # documents parsed before their keys are made

# (ids back to back, document start offsets); a bigram never spans two documents
Chunk = tuple[np.ndarray, np.ndarray]


def cache_dir() -> Path:
    root = os.environ.get("TWICE_CACHE") or str(Path.home() / ".cache" / "twice")
    return Path(root).expanduser() / "bigrams"


def table_digest(ref: CorpusRef, tokenizer_spec: str | None) -> str:
    identity = {
        "counting": COUNTING_VERSION,
        # a language's table counts its training stream: which documents of it
        "training": [TRAIN_SEED, TRAIN_DOCUMENTS] if ref.language is not None else None,
        "corpus": corpus_digest(ref),
        "kind": "language" if ref.language is not None else (ref.path.suffix if ref.path else ""),
        "tokenizer": tokenizer_spec,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def chunk_keys(ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Packed ``(first << 32) | second`` keys of every within-document bigram of a chunk."""
    ids = ids.astype(np.uint64, copy=False)
    if len(ids) < 2:
        return np.zeros(0, np.uint64)
    keys = (ids[:-1] << np.uint64(_ID_BITS)) | ids[1:]
    crossing = starts[1:] - 1  # the pair (last of a document, first of the next)
    keep = np.ones(len(keys), bool)
    keep[crossing[(crossing >= 0) & (crossing < len(keys))]] = False
    return keys[keep]


def reduce_sorted(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the counts of equal keys; ``keys`` need not be sorted."""
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    if len(keys) == 0:
        return keys, counts
    first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[first], np.add.reduceat(counts, first)


class Counter:
    """Accumulates chunks; memory stays at the distinct bigrams plus one chunk."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.uint64)
        self.counts = np.zeros(0, np.int64)
        self.pending: list[np.ndarray] = []
        self.pending_size = 0

    def add(self, ids: np.ndarray, starts: np.ndarray) -> None:
        if len(ids) and (ids.min() < 0 or ids.max() >= 1 << _ID_BITS):
            raise ValueError("token ids must lie in [0, 2^32)")
        keys = chunk_keys(ids, starts)
        self.pending.append(keys)
        self.pending_size += len(keys)
        if self.pending_size >= CHUNK_TOKENS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        unique, counts = np.unique(np.concatenate(self.pending), return_counts=True)
        self.pending, self.pending_size = [], 0
        self.keys, self.counts = reduce_sorted(
            np.concatenate([self.keys, unique]), np.concatenate([self.counts, counts])
        )

    def table(self) -> BigramCounts:
        self.flush()
        return BigramCounts(self.keys, self.counts.astype(np.int64))


def corpus_chunks(ref: CorpusRef, tokenizer_spec: str | None) -> tuple[int | None, Iterator[Chunk]]:
    """(documents in the corpus when known up front, its chunks)."""
    if ref.language is not None:

        def blocks() -> Iterator[Chunk]:
            for block in ref.language.blocks(TRAIN_SEED, TRAIN_DOCUMENTS):  # type: ignore[union-attr]
                rows, width = block.shape
                yield block.ravel(), np.arange(rows, dtype=np.int64) * width

        return TRAIN_DOCUMENTS, blocks()
    assert ref.path is not None
    if ref.path.suffix == ".npz":
        with np.load(ref.path) as data:
            if set(data.files) != {"ids", "offsets"}:
                raise ValueError(f"{ref.path}: an ids corpus holds exactly 'ids' and 'offsets'")
            ids, offsets = data["ids"], data["offsets"].astype(np.int64)
        if (
            len(offsets) == 0
            or offsets[0] != 0
            or np.any(np.diff(offsets) < 0)
            or offsets[-1] > len(ids)
        ):
            raise ValueError(f"{ref.path}: 'offsets' must ascend from 0 and stay within 'ids'")
        return len(offsets), _array_chunks(ids, offsets)
    tokenizer = None
    if tokenizer_spec is not None:
        from ..tokenizers import load_tokenizer

        tokenizer = load_tokenizer(tokenizer_spec)
    return None, _jsonl_chunks(ref.path, tokenizer)


def _array_chunks(ids: np.ndarray, offsets: np.ndarray) -> Iterator[Chunk]:
    """Whole documents, about CHUNK_TOKENS ids at a time."""
    first = 0
    while first < len(offsets):
        last = int(np.searchsorted(offsets, offsets[first] + CHUNK_TOKENS, side="right"))
        last = max(last, first + 1)
        begin = int(offsets[first])
        end = int(offsets[last]) if last < len(offsets) else len(ids)
        yield ids[begin:end], offsets[first:last] - begin
        first = last


def _jsonl_chunks(path: Path, tokenizer) -> Iterator[Chunk]:  # type: ignore[no-untyped-def]
    """JSONL documents, JSONL_BATCH at a time. ``{"ids"}`` lines are checked a batch at a time
    (one array conversion); a batch that fails is re-read line by line, so the error names the
    line and what is wrong with it."""
    batch: list[list[int]] = []
    lines: list[tuple[int, str]] = []

    def emit() -> Chunk:
        lengths = np.fromiter((len(d) for d in batch), np.int64, len(batch))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        flat = np.array(list(itertools.chain.from_iterable(batch)))
        if len(flat) and (flat.dtype.kind not in "iu" or flat.min() < 0 or flat.max() >= 2**32):
            for number, line in lines:  # raises, naming the first bad line
                parse_document(line, f"{path}:{number}", tokenizer)
        return flat.astype(np.int64), starts

    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = _fast_ids(line)
            batch.append(
                row if row is not None else parse_document(line, f"{path}:{number}", tokenizer)
            )
            lines.append((number, line))
            if len(batch) == JSONL_BATCH:
                yield emit()
                batch, lines = [], []
    if batch:
        yield emit()


def _fast_ids(line: str) -> list[int] | None:
    """The ids of a plain ``{"ids": [...]}`` line, unchecked (emit checks the batch); None for
    anything else, which parse_document reads and checks."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    if isinstance(row, dict) and len(row) == 1 and isinstance(row.get("ids"), list):
        ids = row["ids"]
        if not ids or type(ids[0]) is int:  # a bool or float later on fails the batch check
            return ids
    return None


def build(
    corpus: str,
    tokenizer_spec: str | None = None,
    out_dir: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[Path, dict[str, float]]:
    """Count ``corpus``; returns the table's path and {documents, tokens, seconds, docsPerSecond}.
    An existing table of the same digest is reused."""
    ref = resolve_corpus(corpus)
    directory = out_dir or cache_dir()
    target = directory / f"{table_digest(ref, tokenizer_spec)}.npz"
    if target.is_file():
        load_bigram_counts(target)  # a damaged file is an error, not a silent reuse
        return target, {"documents": 0, "tokens": 0, "seconds": 0.0, "docsPerSecond": 0.0}
    total, chunks = corpus_chunks(ref, tokenizer_spec)
    from tqdm import tqdm

    counter = Counter()
    started = time.perf_counter()
    documents = tokens = 0
    with tqdm(
        total=total,
        unit="doc",
        unit_scale=True,
        disable=not progress,
        desc="bigrams",
        file=sys.stderr,
    ) as bar:
        for ids, starts in chunks:
            counter.add(ids, starts)
            documents += len(starts)
            tokens += len(ids)
            bar.update(len(starts))
            if on_chunk is not None:
                on_chunk(documents)
    table = counter.table()
    seconds = time.perf_counter() - started
    directory.mkdir(parents=True, exist_ok=True)
    # written under a temporary name and renamed: a reader never sees half a table
    partial = directory / f".{target.stem}.{os.getpid()}.partial.npz"
    table.save(partial)
    partial.replace(target)
    stats = {
        "documents": documents,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "docsPerSecond": round(documents / seconds, 1) if seconds > 0 else 0.0,
        "bigrams": len(table.keys),
    }
    log(
        f"counted {documents:,} documents ({tokens:,} tokens, {len(table.keys):,} distinct "
        f"bigrams) in {seconds:.1f} s: {stats['docsPerSecond']:,.0f} documents/s"
    )
    return target, stats


_building = threading.Lock()


def build_cached(
    corpus: str, tokenizer_spec: str | None, on_chunk: Callable[[int], None] | None = None
) -> Path:
    """The table for ``corpus`` (built now if missing), without a progress bar. One build at a
    time per process: shards of one cell arriving together wait for the first one's table.
    ``on_chunk`` hears the documents counted so far (a worker heartbeats there)."""
    # waiting for another shard's build counts as progress too, or its heartbeat would lapse
    while not _building.acquire(timeout=5):
        if on_chunk is not None:
            on_chunk(0)
    try:
        quiet = build(corpus, tokenizer_spec, progress=False, log=lambda _: None, on_chunk=on_chunk)
        return quiet[0]
    finally:
        _building.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twice bigrams")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("build", help="count a training corpus's bigrams")
    run.add_argument("corpus", help="synthetic:<language>, a .jsonl or an .npz of ids")
    run.add_argument("--tokenizer", help="tokenizer for 'text' documents (e.g. synthetic-v1)")
    run.add_argument("--out", type=Path, help="directory for the table (default: the cache)")
    run.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        path, stats = build(args.corpus, args.tokenizer, args.out, not args.no_progress)
    except (ValueError, FileNotFoundError) as error:
        print(f"twice bigrams: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"table": str(path), **stats}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
