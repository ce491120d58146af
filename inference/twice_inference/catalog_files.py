"""Where the worker finds the files it shares with the TypeScript orchestrator: the model catalog
and the zoo manifest. In the repository they live in ``inference/catalog/``, outside this package,
so the orchestrator reads them without reaching into Python code; the wheel carries a copy as
package data (``twice_inference/catalog/``, put there by the build, see setup.py). An installed
package reads its own copy; a source checkout reads the repository's."""

from __future__ import annotations

from pathlib import Path

PACKAGED_DIR = Path(__file__).resolve().parent / "catalog"
SOURCE_DIR = Path(__file__).resolve().parents[1] / "catalog"

MODEL_CATALOG = "models.json"
ZOO_MANIFEST = "zoo-manifest.json"


def catalog_dir() -> Path:
    """The folder holding ``models.json`` and ``zoo-manifest.json``."""
    return PACKAGED_DIR if PACKAGED_DIR.is_dir() else SOURCE_DIR


def catalog_file(name: str) -> Path:
    return catalog_dir() / name
