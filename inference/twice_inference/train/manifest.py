"""Checkpoints and ``zoo/manifest.json``: what is saved for each model and how the manifest is
rebuilt from the files."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models.revision import sha256_file
from ..tasks.registry import TASK_VERSIONS
from ..tasks.strategies import STRATEGY_VERSIONS
from ..tokenizers import SYNTHETIC_V1, load_tokenizer
from .config import MANIFEST_VERSION, MIXTURE_VERSION, TRAINING_MIXTURE, TRAINING_STRATEGIES

# ---------------------------------------------------------------------------------------------
# Checkpoints and manifest
# ---------------------------------------------------------------------------------------------


def weights_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU float32 tensors, each stored once: a tied head is dropped (the loader re-ties it)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        out[name] = tensor.detach().to("cpu", torch.float32).contiguous().clone()
    return out


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.machine()}, {platform.processor() or 'unknown processor'})"


def generator_versions() -> dict[str, Any]:
    return {
        "tasks": {name: TASK_VERSIONS[name] for name in sorted(TRAINING_MIXTURE)},
        "strategies": {name: STRATEGY_VERSIONS[name] for name, _ in TRAINING_STRATEGIES},
        "tokenizer": SYNTHETIC_V1,
        "tokenizerDigest": load_tokenizer(SYNTHETIC_V1).vocabulary_digest(),
        "mixture": MIXTURE_VERSION,
    }


def write_manifest(out_dir: Path) -> dict[str, Any]:
    """Rebuild ``manifest.json`` from every ``<name>/curve.json`` + weights under ``out_dir``."""
    models = {}
    for curve_file in sorted(out_dir.glob("*/curve.json")):
        directory = curve_file.parent
        run = json.loads(curve_file.read_text())
        weights = directory / "model.safetensors"
        models[directory.name] = {
            "sha256": sha256_file(weights),
            "family": run["family"],
            "config": json.loads((directory / "config.json").read_text()),
            "params": run["params"],
            "seed": run["seed"],
            "steps": run["steps"],
            "generatorVersions": run["generatorVersions"],
            "objective": run.get("objective", "answers"),
            **{
                key: run[key]
                for key in ("finalValAccuracy", "finalValPerplexity", "trainingCorpus")
                if key in run
            },
            "trainedOn": run["trainedOn"],
            "wallSeconds": run["wallSeconds"],
        }
    manifest = {"version": MANIFEST_VERSION, "models": models}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
