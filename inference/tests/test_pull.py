"""``twice_inference.pull`` through the real huggingface_hub client, over real HTTP, against a
small local server that answers the hub's API the way the hub does (repo info, recursive tree,
``resolve`` with HEAD metadata): a tiny model and a tiny dataset land in the cache where the
worker's loaders then find them."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from fake_hub import COMMIT, REPOS, FakeHub

from twice_inference.models.registry import hf_model_dir
from twice_inference.pull import main, pull
from twice_inference.tasks.datasets import candidate_data_dirs, split_files


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("TWICE_MODEL_DIR", raising=False)
    monkeypatch.delenv("TWICE_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    yield tmp_path / "hub"
    server.shutdown()
    server.server_close()


def test_pull_model_and_dataset_into_the_cache_the_worker_reads(hub: Path) -> None:
    model = pull("tiny-org/tiny-model", "model")
    assert model.commit == COMMIT
    assert (model.path / "model.safetensors").read_bytes() == REPOS[
        ("models", "tiny-org/tiny-model")
    ]["model.safetensors"]
    assert hf_model_dir("tiny-org/tiny-model", "main") == model.path  # refs/main -> the commit

    data = pull("tiny-org/tiny-data", "dataset")
    found = [
        d for d in candidate_data_dirs("tiny-org/tiny-data", None) if d.is_dir() and split_files(d)
    ]
    assert found == [data.path]


def test_cli_reports_each_repo_and_fails_on_a_missing_one(hub: Path, capsys) -> None:
    assert main(["--model", "tiny-org/tiny-model", "--model", "tiny-org/absent"]) == 1
    captured = capsys.readouterr()
    assert f"pulled model tiny-org/tiny-model @ {COMMIT}" in captured.out
    assert "failed model tiny-org/absent" in captured.err


def test_bad_repo_id_is_refused() -> None:
    with pytest.raises(ValueError, match="repository id"):
        pull("../etc", "model")
