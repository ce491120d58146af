"""Trains the in-house tiny model zoo on the synthetic tasks (mqar, synthetic_doc_qa,
set_disjointness) and writes ``zoo/<name>/{model.safetensors,config.json,curve.json}`` plus
``zoo/manifest.json``. Data come from the task generators on the fly, with seeds kept disjoint from
evaluation. Tested by ``tests/test_train.py`` (a CPU micro run).

    python -m twice_inference.train --config twice_inference/zoo/configs/zoo-attn-tiny.json
    python -m twice_inference.train --all --device cuda --jobs 6 --workers 3 --out /tmp/zoo

One module per concern: config (what a zoo config holds, seed bands, the mixture), data (streams,
validation sets, batches), objective (model, losses, schedule), evaluate, manifest (checkpoints
and manifest.json), loop (one model's training), scheduler (several at once), cli.
"""

from ..models.revision import sha256_file
from .cli import main
from .config import (
    CONFIG_DIR,
    ZOO_DIR,
    ZooTrainingConfig,
    load_config,
)
from .data import (
    Sequence,
    TrainingStream,
    check_seed_bands,
    collate,
    layout,
    train_seed,
    validation_seed,
    validation_sets,
)
from .loop import train
from .manifest import write_manifest
from .objective import build_zoo_model, loss_terms, mask_encoder_tokens, model_logits
from .scheduler import least_busy_gpu, visible_gpus

__all__ = [
    "CONFIG_DIR",
    "ZOO_DIR",
    "Sequence",
    "TrainingStream",
    "ZooTrainingConfig",
    "build_zoo_model",
    "check_seed_bands",
    "collate",
    "layout",
    "least_busy_gpu",
    "load_config",
    "loss_terms",
    "main",
    "mask_encoder_tokens",
    "model_logits",
    "sha256_file",
    "train",
    "train_seed",
    "validation_seed",
    "validation_sets",
    "visible_gpus",
    "write_manifest",
]
