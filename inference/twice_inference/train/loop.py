"""The training loop of one model: optimiser, data loader, evaluation points, the ``--time-limit``
schedule, and the files it writes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.registry import count_parameters
from ..tokenizers import SYNTHETIC_V1, load_tokenizer
from .config import (
    TIMING_STEPS,
    TRAIN_SEED_BASE,
    TRAINING_MIXTURE,
    TRAINING_STRATEGIES,
    VALIDATION_SEED_BASE,
    ZooTrainingConfig,
)
from .data import (
    LANGUAGE_VALIDATION_SEED,
    BatchDataset,
    CorpusBatches,
    CorpusStream,
    TrainingStream,
    language_of,
    validation_sets,
)
from .evaluate import evaluate, evaluate_perplexity, training_table
from .manifest import device_name, generator_versions, weights_for_saving
from .objective import build_zoo_model, loss_terms, lr_at

# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def train(
    config: ZooTrainingConfig,
    out_dir: Path,
    device: str = "cpu",
    steps: int | None = None,
    workers: int = 0,
    time_limit: float | None = None,
    log=print,
) -> dict[str, Any]:
    """Train one model and write ``out_dir/<name>/``. ``steps`` overrides the config (the
    schedule follows it); ``time_limit`` stops early and records the steps actually run."""
    if steps is not None:
        config = config.model_copy(
            update={
                "steps": steps,
                "warmup_steps": min(config.warmup_steps, max(0, steps // 10)),
            }
        )
    started = time.time()
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(SYNTHETIC_V1)
    if config.model.get("vocab_size") != tokenizer.vocab_size:
        raise ValueError(
            f"{config.name}: model.vocab_size={config.model.get('vocab_size')} must "
            f"equal the {SYNTHETIC_V1} vocabulary ({tokenizer.vocab_size})"
        )
    # [MASK] for the JRT-RNN objective: the vocabulary is fixed, and the pad id is the one id a
    # real token never carries (pads are masked out of every state), so it is free to reuse.
    mask_id = tokenizer.pad_id

    model = build_zoo_model(config).to(device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "A_log" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "A_log" in n]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.98),
    )
    next_token = config.objective == "next_token"
    if next_token:
        assert config.corpus is not None
        corpus_stream = CorpusStream(
            config.seed,
            config.batch_size,
            config.corpus,
            config.seq_len,
            config.train_documents,
            config.curriculum_steps,
            config.curriculum_seq_len,
        )
        dataset: torch.utils.data.IterableDataset = CorpusBatches(corpus_stream, 0, config.steps)
        table = training_table(corpus_stream.documents[:, : config.seq_len])
        language = language_of(config.corpus)

        def held_out(count: int) -> np.ndarray:
            return language.documents(LANGUAGE_VALIDATION_SEED, 0, count)[:, : config.seq_len]

        curve_documents = held_out(config.eval_examples)
    else:
        stream = TrainingStream(config.seed, config.batch_size, tokenizer)
        curve_sets = validation_sets(tokenizer, config.eval_examples)
        dataset = BatchDataset(stream, 0, config.steps)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        pin_memory=device.startswith("cuda"),
        prefetch_factor=8 if workers else None,
        persistent_workers=False,
    )
    mlm_gen = torch.Generator().manual_seed(config.seed + 1)
    points: list[dict[str, Any]] = []
    running: dict[str, float] = {}
    steps_done = 0
    stopped_early = False
    planned_steps = config.steps

    def record(step: int) -> None:
        if next_token:
            record_perplexity(step)
            return
        accuracy = evaluate(model, config, curve_sets, tokenizer, device)
        mean = float(np.mean([v["accuracy"] for s in accuracy.values() for v in s.values()]))
        point = {
            "step": step,
            "lr": lr_at(max(0, step - 1), config),
            **{k: v / max(1, running.get("count", 0)) for k, v in running.items() if k != "count"},
            "valAccuracy": {
                t: {s: v["accuracy"] for s, v in by.items()} for t, by in accuracy.items()
            },
            "valMeanAccuracy": mean,
            "seconds": round(time.time() - started, 1),
        }
        points.append(point)
        running.clear()
        shown = " ".join(
            f"{t[:6]}/{s[:3]}={v:.2f}"
            for t, by in point["valAccuracy"].items()
            for s, v in by.items()
        )
        log(
            f"[{config.name}] step {step:>6} loss {point.get('loss', float('nan')):.4f} "
            f"val {mean:.3f} ({shown}) {point['seconds']}s"
        )

    def record_perplexity(step: int) -> None:
        result = evaluate_perplexity(model, curve_documents, table, str(config.corpus), device)
        point = {
            "step": step,
            "lr": lr_at(max(0, step - 1), config),
            **{k: v / max(1, running.get("count", 0)) for k, v in running.items() if k != "count"},
            **{k: result[k] for k in ("valLoss", "arHitPerplexity", "otherPerplexity")},
            "seconds": round(time.time() - started, 1),
        }
        points.append(point)
        running.clear()
        log(
            f"[{config.name}] step {step:>6} loss {point.get('loss', float('nan')):.4f} "
            f"val {result['valLoss']:.4f} ppl AR hits {result['arHitPerplexity']:.2f} "
            f"other {result['otherPerplexity']:.2f} {point['seconds']}s"
        )

    record(0)
    # The schedule is sized from steps at the final sequence length: curriculum steps are cheaper.
    timing_from = config.curriculum_steps
    loop_started = time.time()
    for step, batch in enumerate(loader):
        if step == timing_from:
            loop_started = time.time()
        batch = batch.to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        loss, terms = loss_terms(model, config, batch, mask_id, mlm_gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        for key, value in terms.items():
            running[key] = running.get(key, 0.0) + value
        running["count"] = running.get("count", 0) + 1
        steps_done = step + 1
        if steps_done % config.eval_every == 0 and steps_done != config.steps:
            record(steps_done)
        if time_limit is not None and steps_done == timing_from + TIMING_STEPS:
            # Fit the cosine schedule into the time left, from the speed measured so far.
            elapsed = time.time() - loop_started
            # 0.85: evaluation points and the final evaluation also take time.
            left = time_limit - (time.time() - started)
            fits = steps_done + int(0.85 * TIMING_STEPS * left / elapsed)
            fits = max(fits, config.warmup_steps + 1, steps_done)
            if fits < config.steps:
                log(
                    f"[{config.name}] {elapsed / TIMING_STEPS * 1e3:.1f} ms/step: schedule "
                    f"shortened from {config.steps} to {fits} steps"
                )
                config = config.model_copy(update={"steps": fits})
                stopped_early = True
        if steps_done >= config.steps:
            break
        if time_limit is not None and time.time() - started > time_limit:
            # the plan is an estimate (evaluation points, a busier GPU): the limit is not
            log(f"[{config.name}] time limit reached at step {steps_done} of {config.steps}")
            stopped_early = True
            break
    if running:
        record(steps_done)

    if next_token:
        final = evaluate_perplexity(
            model, held_out(config.final_eval_examples), table, str(config.corpus), device
        )
        outcome: dict[str, Any] = {
            "finalValPerplexity": {
                k: final[k] for k in ("valLoss", "arHitPerplexity", "otherPerplexity")
            },
            "trainingCorpus": {
                "corpus": config.corpus,
                "documents": config.train_documents,
                "seqLen": config.seq_len,
                "bigrams": int(len(table.keys)),
            },
        }
    else:
        final_sets = validation_sets(tokenizer, config.final_eval_examples)
        final = evaluate(model, config, final_sets, tokenizer, device)
        outcome = {
            "finalValAccuracy": {
                t: {s: v["accuracy"] for s, v in by.items()} for t, by in final.items()
            },
            "trainingMixture": TRAINING_MIXTURE,
            "trainingStrategies": [{"name": n, "params": p} for n, p in TRAINING_STRATEGIES],
        }
    wall = round(time.time() - started, 1)
    log(f"[{config.name}] final " + json.dumps(final))

    model_dir = out_dir / config.name
    model_dir.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file(
        {
            name: tensor.to(getattr(torch, config.save_dtype))
            for name, tensor in weights_for_saving(model).items()
        },
        str(model_dir / "model.safetensors"),
        metadata={"name": config.name, "family": config.family},
    )
    (model_dir / "config.json").write_text(
        json.dumps(config.model, indent=2, sort_keys=True) + "\n"
    )
    run = {
        "name": config.name,
        "family": config.family,
        "params": count_parameters(model),
        "seed": config.seed,
        "steps": steps_done,
        "plannedSteps": planned_steps,
        "stoppedEarly": stopped_early,
        "training": config.model_dump(exclude={"model"}),
        "objective": config.objective,
        **outcome,
        "trainSeedBase": TRAIN_SEED_BASE,
        "validationSeedBase": VALIDATION_SEED_BASE,
        "maskTokenId": mask_id if config.mlm_weight > 0 else None,
        "generatorVersions": generator_versions(),
        "finalValDetail": final,
        "trainedOn": device_name(device),
        "torch": torch.__version__,
        "wallSeconds": wall,
        "points": points,
    }
    (model_dir / "curve.json").write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
    return run
