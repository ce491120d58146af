"""Where a sweep may read data from. A spec names data paths (a task's ``dataDir``, an absolute
``slices.bigramCounts``); they must lie under one of the roots the configuration allows, so a spec
cannot make the worker read ``/etc/passwd``. ``TWICE_DATA_ROOTS`` (``os.pathsep``-separated)
replaces the defaults: ``TWICE_DATA_DIR``, the Hugging Face hub cache, the home directory and the
repository. The orchestrator checks the same roots before a sweep starts
(workers/lib/data-roots.ts).
"""

from __future__ import annotations

import os
from pathlib import Path

# inference/twice_inference/tasks/data_roots.py -> the clone, when the package runs from one
_CLONE = Path(__file__).resolve().parents[3]


def hub_cache() -> Path:
    """The Hugging Face hub cache: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else the default."""
    return Path(
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    )


def allowed_data_roots() -> list[Path]:
    configured = os.environ.get("TWICE_DATA_ROOTS")
    if configured:
        roots = [Path(p) for p in configured.split(os.pathsep) if p]
    else:
        roots = [Path(d) for d in [os.environ.get("TWICE_DATA_DIR")] if d]
        roots += [hub_cache(), Path.home()]
        if (_CLONE / "inference").is_dir():
            roots.append(_CLONE)
    return [r.expanduser().resolve() for r in roots]


def check_data_path(path: str | Path, what: str) -> Path:
    """The path, resolved (links followed), if it lies under an allowed root; else ValueError."""
    resolved = Path(path).expanduser().resolve()
    roots = allowed_data_roots()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ValueError(
            f"{what} {str(path)!r} is outside the data roots this worker allows "
            f"({', '.join(map(str, roots))}); move the data under one of them or add its "
            "folder to TWICE_DATA_ROOTS"
        )
    return resolved
