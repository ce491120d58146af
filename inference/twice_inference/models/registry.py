"""Model registry: the model catalog (``inference/catalog/models.json``, shared with the
orchestrator) names every model the platform knows; ``load_model`` builds one by family, loads its
weights (in-house zoo directory, a local Hugging Face layout directory, a spec's checkpoint folder
built like a catalog model, or seeded random weights for the pipeline-smoke-test "debug" models)
and its tokenizer; ``operator`` entries are bare attention kernels for prefill_throughput
(``models/operators.py``). Family builders are imported lazily by "module:function" name, so a
family whose adapter is not installed fails only when used.
``python -m twice_inference.models.registry --list`` prints the catalog.
Tested in ``tests/test_registry.py`` (every entry built on the meta device; the debug models load,
reload identically, run a real task's prompt and refuse a wrong revision).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..catalog_files import MODEL_CATALOG, catalog_file
from ..protocols import LanguageModel, Tokenizer
from .checkpoint import CONVERTERS
from .init import initialize
from .operators import OPERATOR_VERSIONS, Operator, operator_revision
from .revision import RevisionMismatch, check_weights_digest, expect_kind, parse_revision

CATALOG_PATH = catalog_file(MODEL_CATALOG)
ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
ZOO_TOKENIZER = "synthetic-v1"

# family -> its builder, "module:function" under twice_inference.models, imported on first use
# so a family whose module cannot import only fails the models that name it. Checkpoint key
# conversion is ``checkpoint.CONVERTERS``.
FAMILIES: dict[str, str] = {
    "transformer": "transformer:build",
    "based": "based:build",
    "jrt_rnn": "jrt_rnn:build",
    "mamba": "mamba:build",
    "mamba2": "mamba2:build",
    "gla": "gla:build",
}

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


class FamilyUnavailable(RuntimeError):
    """The family's adapter module is not importable (not written yet, or a missing dependency)."""


class WeightsMissing(FileNotFoundError):
    """No weights at the place a catalog entry points to."""


# ---------------------------------------------------------------------------------------------
# Catalog schema
# ---------------------------------------------------------------------------------------------


class ZooSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["zoo"]
    path: str = Field(pattern=r"^zoo/[A-Za-z0-9._-]+$")  # relative to the twice_inference package


class HFSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["hf"]
    hfId: str
    tokenizer: str  # "gpt2" | "EleutherAI/gpt-neox-20b" | "own" (the checkpoint directory's)


class RandomSource(BaseModel):
    """No file: weights are drawn from ``seed``, so every load on every machine gives the same."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["random"]
    seed: int = Field(ge=0)
    tokenizer: str  # e.g. "bytes-v1"; named here as hf sources name theirs


def random_revision(seed: int) -> str:
    """The only revision a random-weight model has: what its weights are a function of."""
    return f"random:seed={seed}"


class OperatorSource(BaseModel):
    """A kernel-level entry: no weights, no tokenizer; only prefill_throughput runs it."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["operator"]
    op: str = Field(min_length=1)  # a key of operators.OPERATOR_VERSIONS
    version: int = Field(ge=1)


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    family: Literal["transformer", "based", "jrt_rnn", "mamba", "mamba2", "gla", "operator"]
    source: ZooSource | HFSource | RandomSource | OperatorSource = Field(discriminator="kind")
    dtype: Literal["float32", "bfloat16", "float16"]
    # Compute precision when it differs from the weights': the paper's harness loads the hazy
    # attention checkpoints' fp16 weights as they are and runs them under bf16 autocast, so
    # matmuls round to bf16 while norms, embeddings and the residual stream stay fp16. Applies
    # only at the entry's own dtype (an execution.dtype override runs plainly in that dtype).
    autocast: Literal["bfloat16", "float16"] | None = None
    config: dict[str, Any]
    nominalParams: int = Field(ge=0)  # 0 for operators, which have no parameters
    notes: str = ""

    @model_validator(mode="after")
    def _operators_are_their_own_family(self) -> CatalogEntry:
        is_operator = isinstance(self.source, OperatorSource)
        if is_operator != (self.family == "operator"):
            raise ValueError(
                f"model {self.name!r}: family 'operator' goes with source kind 'operator' and only "
                f"with it (family {self.family!r}, source kind {self.source.kind!r})"
            )
        if (self.nominalParams == 0) != is_operator:
            raise ValueError(
                f"model {self.name!r}: nominalParams must be > 0 for a model and 0 for an "
                f"operator, got {self.nominalParams}"
            )
        return self


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[CatalogEntry]

    def get(self, name: str) -> CatalogEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        raise KeyError(
            f"model {name!r} is not in the catalog; known: {[e.name for e in self.models]}"
        )


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    catalog = Catalog.model_validate(json.loads(path.read_text()))
    names = [e.name for e in catalog.models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate model names {duplicates}")
    return catalog


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def _resolve(family: str) -> Callable[..., Any]:
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is unknown; known: {sorted(FAMILIES)}")
    module_name, function = FAMILIES[family].split(":")
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
    except ImportError as error:
        raise FamilyUnavailable(
            f"family {family!r}: cannot import {module_name}.py ({error})"
        ) from error
    return getattr(module, function)


def import_families() -> list[str]:
    """Imports every family's module now (a worker does it before it takes shards, so that its
    first shard of each family does not); returns the families that cannot import, which fail
    only the models that name them, when they are loaded."""
    unavailable = []
    for family in FAMILIES:
        try:
            _resolve(family)
        except FamilyUnavailable:
            unavailable.append(family)
    return unavailable


def build_model(family: str, config: dict[str, Any]) -> torch.nn.Module:
    return _resolve(family)(config)


def as_language_model(model: torch.nn.Module) -> LanguageModel:
    """A built model seen through the protocol the engine uses; builders are found by name, so a
    builder that returns something else fails here, naming its type, not deep inside a batch."""
    if not isinstance(model, LanguageModel):
        raise TypeError(f"{type(model).__name__} does not implement the LanguageModel protocol")
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied head counts once)."""
    return sum(p.numel() for p in model.parameters())


def build_on_meta(entry: CatalogEntry) -> torch.nn.Module:
    """The entry's model with shapes only (no memory), in the entry's dtype."""
    with torch.device("meta"):
        model = build_model(entry.family, entry.config)
    return model.to(DTYPES[entry.dtype])


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def hf_model_dir(hf_id: str, revision: str) -> Path:
    """Where a Hugging Face checkpoint is on this machine: ``$TWICE_MODEL_DIR/<hfId>`` first, then
    the HF hub cache snapshot for ``revision`` (a commit, or a ref such as "main")."""
    candidates: list[Path] = []
    model_dir = os.environ.get("TWICE_MODEL_DIR")
    if model_dir:
        candidates.append(Path(model_dir) / hf_id)
    hub = Path(
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    )
    repo = hub / f"models--{hf_id.replace('/', '--')}"
    ref_file = repo / "refs" / revision
    commit = ref_file.read_text().strip() if ref_file.is_file() else revision
    candidates.append(repo / "snapshots" / commit)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise WeightsMissing(
        f"checkpoint {hf_id!r} (revision {revision!r}) not found; looked in: {tried}"
    )


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """All *.safetensors in ``directory`` (sharded or not), else pytorch_model.bin."""
    shards = sorted(directory.glob("*.safetensors"))
    if shards:
        from safetensors.torch import load_file

        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(shard)))
        return state
    bin_file = directory / "pytorch_model.bin"
    if bin_file.is_file():
        loaded = torch.load(bin_file, map_location="cpu", weights_only=True)
        return loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    raise WeightsMissing(f"no *.safetensors or pytorch_model.bin in {directory}")


def random_weights_model(family: str, config: dict[str, Any], seed: int) -> torch.nn.Module:
    """Built and initialised on the CPU in float32 from a private generator (the zoo trainer's
    seeded initialiser), so the weights do not depend on the device, dtype or global RNG state."""
    with torch.device("cpu"):
        model = build_model(family, config)
    model = model.to(torch.float32)
    initialize(model, family, seed)
    return model


def load_weights(
    model: torch.nn.Module, family: str, state_dict: dict[str, torch.Tensor], where: Path
) -> None:
    converted = CONVERTERS[family](state_dict)
    expected = model.state_dict()
    # A tied head is one tensor under two names; checkpoints usually store only the embedding.
    for key, tensor in expected.items():
        if key not in converted:
            for other, other_tensor in expected.items():
                if (
                    other != key
                    and other in converted
                    and other_tensor.data_ptr() == tensor.data_ptr()
                ):
                    converted[key] = converted[other]
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"weights in {where} do not match family {family!r}: missing {missing[:8]}"
            f"{'...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
            f"{'...' if len(unexpected) > 8 else ''}"
        )
    for key, tensor in converted.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"weights in {where}: {key} has shape {tuple(tensor.shape)}, the config expects "
                f"{tuple(expected[key].shape)}"
            )
    model.load_state_dict(converted, strict=True)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    revision: str
    parameters: int
    dtype: str
    device: str
    weights_path: str


@dataclass
class LoadedModel:
    model: LanguageModel | Operator  # an Operator for family "operator" only
    tokenizer: Tokenizer | None
    info: ModelInfo
    autocast: torch.dtype | None = None  # see CatalogEntry.autocast

    def compute(self) -> contextlib.AbstractContextManager[object]:
        """The precision every forward pass of this model runs under (generation, perplexity,
        timed prefill): the entry's autocast, or the weights' own dtype."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.info.device).type, dtype=self.autocast)

    def state_bytes(self, prompt_len: int) -> int:
        """Decoding-state bytes for one sequence after ``prompt_len`` tokens."""
        return int(self.model.state_size_bytes(1, prompt_len))


def load_entry(
    entry: CatalogEntry,
    revision: str,
    device: str,
    dtype: str | None = None,
    with_tokenizer: bool = True,
) -> LoadedModel:
    """Build ``entry`` and load its weights. ``with_tokenizer=False`` skips the tokenizer (tests
    that check weights alone, on machines without tokenizer files)."""
    dtype_name = dtype or entry.dtype
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype_name!r}")
    config = dict(entry.config)
    if isinstance(entry.source, OperatorSource):
        return _load_operator(entry, entry.source, revision, device, dtype_name)
    if isinstance(entry.source, RandomSource):
        expected = random_revision(entry.source.seed)
        if revision != expected:
            raise RevisionMismatch(
                f"model {entry.name!r} has random weights from seed {entry.source.seed}; its only "
                f"revision is {expected!r}, got {revision!r}"
            )
        model = random_weights_model(entry.family, config, entry.source.seed)
        model = model.to(device=device, dtype=DTYPES[dtype_name]).eval()
        return _loaded(
            entry,
            model,
            entry.source.tokenizer,
            revision,
            dtype_name,
            device,
            expected,
            with_tokenizer,
        )
    if isinstance(entry.source, ZooSource):
        directory = ZOO_DIR / Path(entry.source.path).relative_to("zoo")
        config_file = directory / "config.json"
        if config_file.is_file():
            # The zoo's own config.json is what the weights were trained with.
            config = json.loads(config_file.read_text())
        weights = directory / "model.safetensors"
        if not weights.is_file():
            raise WeightsMissing(f"zoo model {entry.name!r}: no weights at {weights}")
        check_weights_digest(parse_revision(revision), weights, entry.name)
        tokenizer_spec = ZOO_TOKENIZER
    else:
        hf_id, ref = expect_kind(parse_revision(revision), "hf", entry.name).parts
        if hf_id != entry.source.hfId:
            raise RevisionMismatch(
                f"model {entry.name!r} is {entry.source.hfId!r}; revision {revision!r} names "
                f"{hf_id!r}"
            )
        directory = hf_model_dir(hf_id, ref)
        if entry.family == "based":
            from .decay import checkpoint_decay_options

            # what the checkpoint was trained with wins over the catalog's copy
            config.update(checkpoint_decay_options(directory))
        tokenizer_spec = (
            str(directory) if entry.source.tokenizer == "own" else entry.source.tokenizer
        )

    state_dict = read_state_dict(directory)  # first: a missing file fails before a big build
    # Built for real (not on meta + to_empty) so buffers an adapter computes at init stay valid.
    with torch.device(device):
        model = build_model(entry.family, config)
    model = model.to(dtype=DTYPES[dtype_name])
    load_weights(model, entry.family, state_dict, directory)
    model = model.eval()
    return _loaded(
        entry, model, tokenizer_spec, revision, dtype_name, device, str(directory), with_tokenizer
    )


def _load_operator(
    entry: CatalogEntry, source: OperatorSource, revision: str, device: str, dtype_name: str
) -> LoadedModel:
    implemented = OPERATOR_VERSIONS.get(source.op)
    if implemented is None:
        raise ValueError(
            f"model {entry.name!r}: unknown operator {source.op!r}; this worker implements "
            f"{sorted(OPERATOR_VERSIONS)}"
        )
    if implemented != source.version:
        raise RevisionMismatch(
            f"model {entry.name!r}: operator {source.op!r} v{source.version} in the catalog, "
            f"this worker implements v{implemented}"
        )
    expected = operator_revision(source.op, source.version)
    if revision != expected:
        raise RevisionMismatch(
            f"model {entry.name!r} is operator {source.op!r}; its only revision is {expected!r}, "
            f"got {revision!r}"
        )
    if dtype_name != "bfloat16":
        raise ValueError(f"model {entry.name!r}: operators run in bfloat16, got {dtype_name!r}")
    operator = Operator(source.op, entry.config, device)
    info = ModelInfo(
        name=entry.name,
        family=entry.family,
        revision=revision,
        parameters=0,
        # what the inputs really are: SDPA on a CPU worker runs float32
        dtype=str(operator.dtype).removeprefix("torch."),
        device=device,
        weights_path=expected,
    )
    return LoadedModel(model=operator, tokenizer=None, info=info)


def _loaded(
    entry: CatalogEntry,
    model: torch.nn.Module,
    tokenizer_spec: str,
    revision: str,
    dtype_name: str,
    device: str,
    weights_path: str,
    with_tokenizer: bool,
) -> LoadedModel:
    lm = as_language_model(model)
    tokenizer = None
    if with_tokenizer:
        from ..tokenizers import load_tokenizer

        tokenizer = load_tokenizer(tokenizer_spec)
        # A checkpoint's vocabulary is fixed by its weights, but a random model's is only what
        # its catalog config says: an id past the embedding would fail deep inside a batch.
        if isinstance(entry.source, RandomSource) and tokenizer.vocab_size > lm.vocab_size:
            raise ValueError(
                f"model {entry.name!r}: tokenizer {tokenizer_spec!r} has {tokenizer.vocab_size} "
                f"ids but config.vocab_size gives {lm.vocab_size} logits"
            )
    info = ModelInfo(
        name=entry.name,
        family=entry.family,
        revision=revision,
        parameters=count_parameters(model),
        dtype=dtype_name,
        device=device,
        weights_path=weights_path,
    )
    autocast = DTYPES[entry.autocast] if entry.autocast and dtype_name == entry.dtype else None
    return LoadedModel(model=lm, tokenizer=tokenizer, info=info, autocast=autocast)


def load_folder(
    name: str,
    revision: str,
    folder: str,
    device: str,
    dtype: str | None = None,
    catalog: Catalog | None = None,
) -> LoadedModel:
    """A spec's checkpoint folder, built like the catalog model its revision names. The folder
    must still hold what the revision's digest says, before and after its weights are read."""
    from .folder import check_folder, check_unchanged

    like, digest = expect_kind(parse_revision(revision), "folder", name).parts
    entry = (catalog or load_catalog()).get(like)
    if isinstance(entry.source, OperatorSource):
        raise ValueError(
            f"model {name!r}: {like!r} is an operator; a checkpoint folder holds weights"
        )
    # the worker checks the folder against its data roots before it gets here (activities.py)
    directory = Path(folder).expanduser().resolve()
    if not directory.is_dir():
        raise WeightsMissing(f"model {name!r}: checkpoint folder {folder} does not exist")
    dtype_name = dtype or entry.dtype
    if dtype_name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype_name!r}")
    listing = check_folder(directory, digest, name)
    config_file = directory / "config.json"
    # what the weights were trained with, as for the zoo; else the catalog model's shapes
    config = json.loads(config_file.read_text()) if config_file.is_file() else dict(entry.config)
    if isinstance(entry.source, ZooSource):
        tokenizer_spec = ZOO_TOKENIZER
    elif isinstance(entry.source, HFSource) and entry.source.tokenizer == "own":
        tokenizer_spec = str(directory)
    else:
        tokenizer_spec = entry.source.tokenizer
    state_dict = read_state_dict(directory)
    check_unchanged(directory, listing, name)
    with torch.device(device):
        model = build_model(entry.family, config)
    model = model.to(dtype=DTYPES[dtype_name])
    load_weights(model, entry.family, state_dict, directory)
    named = entry.model_copy(update={"name": name})
    return _loaded(
        named, model.eval(), tokenizer_spec, revision, dtype_name, device, str(directory), True
    )


def load_model(
    name: str, revision: str, device: str, dtype: str | None = None, folder: str | None = None
) -> LoadedModel:
    """The catalog model ``name`` on ``device`` (dtype defaults to the catalog's), or with
    ``folder`` a spec's checkpoint folder named ``name``."""
    if folder is not None:
        return load_folder(name, revision, folder, device, dtype)
    return load_entry(load_catalog().get(name), revision, device, dtype)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def describe(entry: CatalogEntry, prompt_len: int) -> dict[str, Any]:
    """Name, family, parameters and state bytes from shapes alone (meta device)."""
    row: dict[str, Any] = {
        "name": entry.name,
        "family": entry.family,
        "nominal": entry.nominalParams,
    }
    if isinstance(entry.source, OperatorSource):
        operator = Operator(entry.source.op, entry.config, "cuda")  # shapes only, nothing runs
        return {**row, "params": 0, "state_bytes": operator.state_size_bytes(1, prompt_len)}
    try:
        model = build_on_meta(entry)
    except FamilyUnavailable as error:
        return {**row, "params": None, "state_bytes": None, "error": str(error)}
    row.update(
        params=count_parameters(model),
        state_bytes=int(as_language_model(model).state_size_bytes(1, prompt_len)),
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twice_inference.models.registry")
    parser.add_argument("--list", action="store_true", help="print every catalog model")
    parser.add_argument(
        "--prompt-len", type=int, default=2048, help="prompt length for state bytes"
    )
    parser.add_argument("--json", action="store_true", help="with --list: one JSON array")
    args = parser.parse_args(argv)
    if not args.list:
        parser.print_help()
        return 0
    if args.json:
        print(json.dumps([describe(entry, args.prompt_len) for entry in load_catalog().models]))
        return 0
    print(f"{'name':<18} {'family':<12} {'params':>15} {'nominal':>15} {'state bytes':>14}")
    for entry in load_catalog().models:
        row = describe(entry, args.prompt_len)
        params = f"{row['params']:,}" if row["params"] is not None else "unavailable"
        state = f"{row['state_bytes']:,}" if row["state_bytes"] is not None else "-"
        print(
            f"{row['name']:<18} {row['family']:<12} {params:>15} {row['nominal']:>15,} {state:>14}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
