"""Documents/s of ``twice bigrams build`` on many short synthetic documents (the issue's 10M), for
the ids corpus (``.npz``) and, on a tenth as many, the JSONL ``{"ids"}`` form. A benchmark that
prints figures, not a test:

    python -m twice_inference.bench.bigrams --documents 10000000 --out /tmp/bigrams-bench

Documents are 4-32 ids (uniform) drawn from a Zipf law over a 50,257-id vocabulary, seeded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from ..tasks.bigrams import build

VOCABULARY = 50_257


def synthetic_corpus(documents: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 33, size=documents)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids = (rng.zipf(1.2, size=int(lengths.sum())) - 1) % VOCABULARY
    return ids.astype(np.uint32), offsets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twice_inference.bench.bigrams")
    parser.add_argument("--documents", type=int, default=10_000_000)
    parser.add_argument("--jsonl-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, help="where corpora and tables go (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    root = args.out or Path(tempfile.mkdtemp(prefix="twice-bigrams-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ids, offsets = synthetic_corpus(args.documents, args.seed)
    corpus = root / "corpus.npz"
    np.savez(corpus, ids=ids, offsets=offsets)
    print(
        f"generated {args.documents:,} documents ({len(ids):,} ids) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    results = {}
    _, results["npz"] = build(str(corpus.resolve()), out_dir=root / "tables", progress=True)
    jsonl_docs = int(args.documents * args.jsonl_fraction)
    if jsonl_docs:
        text = root / "corpus.jsonl"
        with text.open("w") as handle:
            for start, end in zip(
                offsets[:jsonl_docs], [*offsets[1:jsonl_docs], None], strict=False
            ):
                stop = (
                    end
                    if end is not None
                    else (offsets[jsonl_docs] if jsonl_docs < len(offsets) else len(ids))
                )
                handle.write(json.dumps({"ids": ids[start:stop].tolist()}) + "\n")
        _, results["jsonl"] = build(str(text.resolve()), out_dir=root / "tables", progress=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
