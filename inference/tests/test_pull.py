"""``twice_inference.pull`` through the real huggingface_hub client, over real HTTP, against a
small local server that answers the hub's API the way the hub does (repo info, recursive tree,
``resolve`` with HEAD metadata): a tiny model and a tiny dataset land in the cache where the
worker's loaders then find them."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from twice_inference.models.registry import hf_model_dir
from twice_inference.pull import main, pull
from twice_inference.tasks.datasets import candidate_data_dirs, split_files

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPOS = {
    ("models", "tiny-org/tiny-model"): {
        "config.json": json.dumps({"d_model": 8}).encode(),
        "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
    },
    ("datasets", "tiny-org/tiny-data"): {
        "data/validation-00000-of-00001.parquet": b"PAR1 not really parquet PAR1",
        "README.md": b"# tiny\n",
    },
}


class FakeHub(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        parts = unquote(urlparse(self.path).path).strip("/").split("/")
        if parts[0] == "api":  # api/{models|datasets}/{org}/{name}/{revision|tree}/{rev}
            kind, repo, what = parts[1], "/".join(parts[2:4]), parts[4]
            files = REPOS.get((kind, repo))
            if files is None:
                return self._send(404, b"{}", {"X-Error-Code": "RepoNotFound"})
            if what == "revision":
                info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
                return self._send(
                    200, json.dumps(info).encode(), {"Content-Type": "application/json"}
                )
            tree = [
                {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for f, b in files.items()
            ]
            return self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"})
        kind = "datasets" if parts[0] == "datasets" else "models"
        if kind == "datasets":
            parts = parts[1:]
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])  # {repo}/resolve/{rev}/{file}
        body = REPOS.get((kind, repo), {}).get(filename)
        if body is None or parts[2] != "resolve":
            return self._send(404, b"", {"X-Error-Code": "EntryNotFound"})
        etag = hashlib.sha1(body).hexdigest()
        self._send(200, body, {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'})

    do_GET = _route
    do_HEAD = _route


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
