"""Issue 11 item 11: data paths a spec names (a task's dataDir, an absolute bigramCounts) are
refused outside the roots the configuration allows. Before, an absolute bigramCounts was read
wherever it pointed and dataDir was not checked at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twice_inference.tasks.data_roots import allowed_data_roots, check_data_path
from twice_inference.tasks.datasets import candidate_data_dirs
from twice_inference.tasks.slices import resolve_bigram_path


def test_paths_outside_the_roots_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"params.dataDir '/etc' is outside the data roots"):
        candidate_data_dirs("org/data", "/etc")
    with pytest.raises(ValueError, match=r"slices.bigramCounts '/etc/passwd' is outside"):
        resolve_bigram_path("/etc/passwd")
    # a link inside a root that points outside it is followed, then refused
    root = Path(os.environ["TWICE_DATA_ROOTS"].split(os.pathsep)[0])
    link = root / "escape"
    link.symlink_to("/etc")
    with pytest.raises(ValueError, match="TWICE_DATA_ROOTS"):
        check_data_path(link / "passwd", "params.dataDir")


def test_paths_under_a_root_are_accepted(tmp_path: Path) -> None:
    assert candidate_data_dirs("org/data", str(tmp_path)) == [tmp_path.resolve()]
    assert resolve_bigram_path(str(tmp_path / "t.npz")) == (tmp_path / "t.npz").resolve()


def test_default_roots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TWICE_DATA_ROOTS")
    monkeypatch.setenv("TWICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    roots = allowed_data_roots()
    assert roots[:3] == [
        (tmp_path / "data").resolve(),
        (tmp_path / "hub").resolve(),
        Path.home().resolve(),
    ]
    assert Path(__file__).resolve().parents[2] in roots  # the clone
    with pytest.raises(ValueError):
        check_data_path("/etc/passwd", "slices.bigramCounts")
    assert (
        check_data_path(tmp_path / "data" / "x", "params.dataDir")
        == (tmp_path / "data" / "x").resolve()
    )
