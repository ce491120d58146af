"""What both model benchmark modes share (``bench.models`` is the command): the paper model each
family is benchmarked at, building it with seeded random weights, one timed call, out-of-memory
handling and the table helpers. Tested through ``tests/test_bench_models.py``.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..engine.throughput import environment_versions, time_callable
from ..models.init import initialize
from ..models.registry import DTYPES, build_model, load_catalog

# The smallest paper checkpoint of each family in catalog.json (gla has only the 1.3B).
SMALLEST_PAPER_MODEL: dict[str, str] = {
    "transformer": "attn-360m-30b",
    "based": "based-360m-30b",
    "jrt_rnn": "jrt-360m-30b",
    "mamba": "mamba-130m",
    "mamba2": "mamba2-130m",
    "gla": "gla-1.3b-100b",
}
FAMILY_ORDER = list(SMALLEST_PAPER_MODEL)


def log(message: str) -> None:
    # flush: the lead's run may not set PYTHONUNBUFFERED.
    print(message, flush=True)


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    return dtype


def resolve_families(families: str | list[str]) -> list[str]:
    names = FAMILY_ORDER if families in ("all", ["all"]) else families
    if isinstance(names, str):
        names = [f.strip() for f in names.split(",") if f.strip()]
    unknown = [f for f in names if f not in SMALLEST_PAPER_MODEL]
    if unknown:
        raise ValueError(f"--families: unknown {unknown}; known: {FAMILY_ORDER} or 'all'")
    return list(names)


def family_configs(
    names: list[str], overrides: dict[str, dict[str, Any]] | None
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(family, model name, config) per family: the override (tests use tiny ones) or the
    smallest paper model's catalog entry."""
    overrides = overrides or {}
    catalog = load_catalog() if any(f not in overrides for f in names) else None
    for family in names:
        if family in overrides:
            yield family, f"{family}-override", overrides[family]
        else:
            name = SMALLEST_PAPER_MODEL[family]
            yield family, name, dict(catalog.get(name).config)  # type: ignore[union-attr]


def build_random(
    family: str, config: dict[str, Any], device: str, dtype: torch.dtype, seed: int
) -> torch.nn.Module:
    """The family's model with the project's seeded initialiser (``models.init``), cast to
    ``dtype`` on ``device``, in eval mode."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = build_model(family, config)
    initialize(model, family, seed)
    return model.to(dtype=dtype).eval()


def time_once(fn: Callable[[], Any], device: str) -> float:
    """Seconds for one call: CUDA events on a GPU (the host clock would time the launch queue),
    perf_counter on the CPU."""
    return time_callable(fn, 1, torch.device(device), warmup=0).seconds[0]


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def release_memory(device: str) -> None:
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def max_rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max over rows of ||a - e|| / ||e|| for [..., V] logits, in float64."""
    a, e = actual.double().flatten(0, -2), expected.double().flatten(0, -2)
    return float(((a - e).norm(dim=-1) / e.norm(dim=-1).clamp(min=1e-30)).max())


def environment(device: str) -> dict[str, Any]:
    """What the figures were measured on: the engine's version probe, plus the device's name and
    (None off a GPU) driver and CUDA keys, so every report has the same fields."""
    versions = environment_versions(torch.device(device))
    cuda = torch.device(device).type == "cuda"
    return {
        "device": versions.pop("gpu") if cuda else versions.pop("cpu"),
        "driver": versions.pop("driver", None),
        "cuda": versions.pop("cuda", None),
        "triton": versions.pop("triton", None),
        **versions,
    }


def write_to_out(filename: str, report: dict[str, Any]) -> None:
    """The GPU benchmarks' JSON goes to $OUT (the folder a remote GPU run returns), if set."""
    out_dir = os.environ.get("OUT")
    if out_dir:
        with open(os.path.join(out_dir, filename), "w") as f:
            json.dump(report, f, indent=1, default=str)


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)
