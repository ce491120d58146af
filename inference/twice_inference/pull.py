"""Download checkpoints, tokenizers and datasets from the Hugging Face hub into its cache, where
the worker and ``twice plan`` look for them (``HF_HUB_CACHE`` / ``HF_HOME``). Goes through
``huggingface_hub`` (so ``HF_ENDPOINT``, ``HF_TOKEN`` and its progress bars apply) and reports
the commit each revision resolved to. ``twice pull`` runs it; by hand:
``python -m twice_inference.pull --model hazyresearch/JRT-1B-50B --dataset hazyresearch/based-fda``.
Tested against a local server speaking the hub's HTTP API in ``tests/test_pull.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class Pulled:
    repo_id: str
    repo_type: str
    commit: str  # the commit the revision resolved to
    path: Path  # the snapshot folder


def pull(repo_id: str, repo_type: Literal["model", "dataset"], revision: str = "main") -> Pulled:
    if not _REPO_ID.match(repo_id):
        raise ValueError(f"not a Hugging Face repository id: {repo_id!r}")
    from huggingface_hub import snapshot_download

    from .hf_tokenizer import _hub_cache

    # Read at call time: huggingface_hub fixes its endpoint and cache when first imported.
    path = Path(
        snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            cache_dir=_hub_cache(),
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    )
    return Pulled(repo_id, repo_type, path.name, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twice_inference.pull")
    parser.add_argument("--model", action="append", default=[], help="model or tokenizer id")
    parser.add_argument("--dataset", action="append", default=[], help="dataset id")
    parser.add_argument("--revision", default="main", help="branch, tag or commit (all repos)")
    args = parser.parse_args(argv)
    if not args.model and not args.dataset:
        parser.error("name at least one --model or --dataset")
    failed = 0
    for repo_type, ids in (("model", args.model), ("dataset", args.dataset)):
        for repo_id in ids:
            try:
                got = pull(repo_id, repo_type, args.revision)
            except Exception as error:  # one failure must not hide the others' results
                failed += 1
                print(f"failed {repo_type} {repo_id}: {error}", file=sys.stderr)
                continue
            print(f"pulled {repo_type} {repo_id} @ {got.commit} -> {got.path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
