"""A small local server that answers the Hugging Face hub's HTTP API the way the hub does (repo
info, recursive tree, ``resolve`` with HEAD metadata) for a tiny model and a tiny dataset, so
``huggingface_hub`` downloads through it over real HTTP. ``tests/test_pull.py`` serves it in a
thread; the TypeScript tests run it as a process (``python tests/fake_hub.py [--commit C]``
prints its port, then serves until its standard input closes), each commit standing for where
the repositories' ``main`` branch points.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

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
    commit = COMMIT  # where "main" points; a subclass moves it

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
                info = {
                    "id": repo,
                    "sha": self.commit,
                    "siblings": [{"rfilename": f} for f in files],
                }
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
        self._send(200, body, {"X-Repo-Commit": self.commit, "ETag": f'"{etag}"'})

    do_GET = _route
    do_HEAD = _route


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/fake_hub.py")
    parser.add_argument("--commit", default=COMMIT, help="the commit every revision resolves to")
    args = parser.parse_args(argv)
    handler = type("PinnedHub", (FakeHub,), {"commit": args.commit})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # the parent closing the pipe (or exiting) stops the server
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
