"""The worker as an installed package: the wheel built from inference/ holds every file the worker
reads at run time, and one real shard (a zoo model on MQAR) runs from it in a fresh virtual
environment, outside the source tree and with no PYTHONPATH. The fresh environment borrows this
one's third-party packages (torch, temporalio, ...) through a .pth file, so nothing is
downloaded and it takes seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import zoo_shard_payload

INFERENCE = Path(__file__).resolve().parents[1]

SHARD_SCRIPT = """
import json, sys
import twice_inference
from temporalio.testing import ActivityEnvironment
from twice_inference.activities import InferenceActivities
out = ActivityEnvironment().run(InferenceActivities(device="cpu").run_shard, json.loads(sys.argv[1]))
print(json.dumps({"package": twice_inference.__file__, "output": out}))
"""


def _build_wheel(tmp: Path) -> Path:
    # A copy, so the build's egg-info and build/ folders never land in the working tree.
    source = tmp / "src"
    shutil.copytree(
        INFERENCE,
        source,
        ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build", ".*cache"),
    )
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-w", str(dist), str(source)],
        check=True,
    )
    (wheel,) = dist.glob("twice_inference-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # this environment's dependencies, read after the venv's own site-packages
    Path(site, "_twice_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        + ["--target", site, str(wheel)],
        check=True,
    )
    return python


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_the_run_time_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "twice_inference/contract-names.json",
        "twice_inference/contract.schema.json",
        "twice_inference/task-catalog.json",
        "twice_inference/models/catalog.json",
        "twice_inference/zoo/manifest.json",
        "twice_inference/zoo/zoo-based-tiny/model.safetensors",
        "twice_inference/ops/linear_attention/chunk.py",
    ):
        assert needed in names, needed
    assert not any(name.startswith("tests/") for name in names)


def test_an_installed_wheel_runs_a_shard_without_pythonpath(wheel: Path, tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path, wheel)
    shard = zoo_shard_payload(
        "zoo-based-tiny",
        {"name": "mqar", "version": 1, "params": {"numExamples": 4, "numKvPairs": 4, "seed": 0}},
        {"name": "default", "version": 1, "params": {}},
        0,
        4,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [str(python), "-c", SHARD_SCRIPT, json.dumps(shard)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(tmp_path / "venv"))
    output = result["output"]
    assert output["model"]["family"] == "based"
    assert [e["exampleId"] for e in output["examples"]] == [0, 1, 2, 3]
    assert all(e["generatedTokens"] >= 1 for e in output["examples"])
