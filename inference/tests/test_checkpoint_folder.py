"""A spec's checkpoint folder: its content digest (the same manifest the orchestrator hashes, pinned
here and in test/unit/checkpoint-folder.test.ts by one golden value), and the worker's refusals:
weights that changed since the sweep resolved them, a file rewritten while it is loaded (the data
roots are checked before, in ``tests/test_activities.py``). A folder holding the zoo's next-token Transformer loads under its own
name and computes what the zoo model computes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from twice_inference.models import registry
from twice_inference.models.folder import (
    check_unchanged,
    folder_digest,
    list_folder,
    manifest_digest,
)
from twice_inference.models.revision import RevisionMismatch, sha256_file

# a.txt = "hello", sub/b.bin = "xyz", é.json = "é", plus files the digest leaves out
GOLDEN = "79d8173d1e0fcf2ba36e2bf26e5c014cc00bb6ccaebf866de625ca72298ca14f"
LIKE = "zoo-lm-attn-tiny"


def _golden_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.txt").write_bytes(b"hello")
    (root / "sub" / "b.bin").write_bytes(b"xyz")
    (root / "\u00e9.json").write_bytes("\u00e9".encode())
    (root / "model.safetensors.tmp").write_bytes(b"half a checkpoint")
    (root / ".hidden" / "x").write_bytes(b"h")
    return root


def test_digest_is_the_manifest_of_paths_sizes_and_contents(tmp_path: Path) -> None:
    folder = _golden_folder(tmp_path / "f")
    digest, files = folder_digest(folder)
    assert [f.rel for f in files] == ["a.txt", "sub/b.bin", "\u00e9.json"]
    assert digest == GOLDEN
    lines = [(f.rel, f.size, sha256_file(folder / f.rel)) for f in files]
    assert manifest_digest(lines) == GOLDEN
    # a touched file (new mtime, same bytes) keeps the digest; new bytes change it
    os.utime(folder / "a.txt", ns=(1, 1))
    assert folder_digest(folder)[0] == GOLDEN
    (folder / "a.txt").write_bytes(b"hellp")
    assert folder_digest(folder)[0] != GOLDEN
    # so does a renamed file
    (folder / "a.txt").write_bytes(b"hello")
    (folder / "a.txt").rename(folder / "c.txt")
    assert folder_digest(folder)[0] != GOLDEN


def test_an_empty_folder_has_no_digest(tmp_path: Path) -> None:
    (tmp_path / ".only-hidden").write_text("x")
    with pytest.raises(FileNotFoundError, match="holds no files"):
        folder_digest(tmp_path)


def test_a_file_rewritten_after_hashing_is_noticed(tmp_path: Path) -> None:
    folder = _golden_folder(tmp_path / "f")
    listing = list_folder(folder)
    check_unchanged(folder, listing, "m")
    (folder / "sub" / "b.bin").write_bytes(b"xyz and more")
    with pytest.raises(RevisionMismatch, match=r"changed while it was loaded \(sub/b.bin\)"):
        check_unchanged(folder, listing, "m")
    (folder / "new.safetensors").write_bytes(b"")
    with pytest.raises(RevisionMismatch, match="new.safetensors"):
        check_unchanged(folder, listing, "m")


@pytest.fixture()
def checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the zoo's next-token Transformer, as a training job would leave it."""
    monkeypatch.setenv("TWICE_DATA_ROOTS", str(tmp_path))
    folder = tmp_path / "run-1" / "latest"
    shutil.copytree(registry.ZOO_DIR / LIKE, folder)
    return folder


def test_a_folder_loads_under_its_name_and_computes_what_its_weights_do(checkpoint: Path) -> None:
    digest, _ = folder_digest(checkpoint)
    loaded = registry.load_model(
        "nightly-lm", f"folder:{LIKE}@{digest}", "cpu", folder=str(checkpoint)
    )
    assert loaded.info.name == "nightly-lm"
    assert loaded.info.revision == f"folder:{LIKE}@{digest}"
    assert loaded.info.weights_path == str(checkpoint.resolve())
    zoo = registry.load_model(LIKE, _zoo_revision(), "cpu")
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(loaded.model.forward(ids), zoo.model.forward(ids))  # type: ignore[union-attr]


def _zoo_revision() -> str:
    return f"sha256:{sha256_file(registry.ZOO_DIR / LIKE / 'model.safetensors')}"


def test_weights_changed_since_the_plan_are_refused(checkpoint: Path) -> None:
    digest, _ = folder_digest(checkpoint)
    weights = checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # training wrote new weights after the sweep resolved the folder
    weights.write_bytes(bytes(data))
    with pytest.raises(RevisionMismatch) as error:
        registry.load_model("nightly-lm", f"folder:{LIKE}@{digest}", "cpu", folder=str(checkpoint))
    message = str(error.value)
    assert f"changed since the sweep resolved it (revision digest {digest}" in message
    assert folder_digest(checkpoint)[0] in message


def test_other_refusals_name_what_is_wrong(checkpoint: Path, tmp_path: Path) -> None:
    digest, _ = folder_digest(checkpoint)
    with pytest.raises(RevisionMismatch, match="needs a folder revision"):
        registry.load_model("nightly-lm", _zoo_revision(), "cpu", folder=str(checkpoint))
    with pytest.raises(KeyError, match="'no-such-model' is not in the catalog"):
        registry.load_model(
            "nightly-lm", f"folder:no-such-model@{digest}", "cpu", folder=str(checkpoint)
        )
    with pytest.raises(registry.WeightsMissing, match="does not exist"):
        registry.load_model(
            "nightly-lm", f"folder:{LIKE}@{digest}", "cpu", folder=str(tmp_path / "gone")
        )
