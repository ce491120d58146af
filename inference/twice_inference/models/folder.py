"""A spec's checkpoint folder: a folder a training job writes into, whose revision
(``folder:<like>@<digest>``) is the digest of its content when the sweep resolved it. The worker
computes the same digest over the files it loads, in the same pass, and refuses the folder when
it differs (new weights since the plan) or when a file changes while it is read, so a cell never
records results of weights other than the ones its key names. The orchestrator's side, with the
rule for folders still being written, is ``activities/checkpoint-folder.ts``; both hash the same
manifest. Tested in ``tests/test_checkpoint_folder.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .revision import RevisionMismatch, sha256_file

_IGNORED = re.compile(r"^\.|\.(tmp|partial|incomplete|lock)$")


def is_ignored(name: str) -> bool:
    """Hidden files and the suffixes writers use for files not yet complete."""
    return bool(_IGNORED.search(name))


@dataclass(frozen=True)
class FileStat:
    rel: str
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int


def list_folder(folder: Path) -> list[FileStat]:
    """Every file the digest covers, sorted by the UTF-8 bytes of its relative path; linked
    folders are not followed, linked files are read through."""
    out: list[FileStat] = []

    def walk(directory: Path, prefix: str) -> None:
        for entry in os.scandir(directory):
            if is_ignored(entry.name):
                continue
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.is_dir(follow_symlinks=False):
                walk(Path(entry.path), rel)
            elif entry.is_file(follow_symlinks=True):
                s = os.stat(entry.path)
                out.append(FileStat(rel, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino))

    walk(folder, "")
    return sorted(out, key=lambda f: f.rel.encode())


def manifest_digest(files: list[tuple[str, int, str]]) -> str:
    """sha256 over one line per file, ``<sha256> <size> <relative path>``, in listing order."""
    h = hashlib.sha256()
    for rel, size, sha in files:
        h.update(f"{sha} {size} {rel}\n".encode())
    return h.hexdigest()


def folder_digest(folder: Path) -> tuple[str, list[FileStat]]:
    """The content digest of ``folder`` (every byte read, no cache) and the listing it covers."""
    files = list_folder(folder)
    if not files:
        raise FileNotFoundError(f"checkpoint folder {folder} holds no files")
    digest = manifest_digest([(f.rel, f.size, sha256_file(folder / f.rel)) for f in files])
    return digest, files


def check_folder(folder: Path, wanted: str, model: str) -> list[FileStat]:
    """Refuses a folder whose content is not the one the revision names; returns its listing,
    for :func:`check_unchanged` once the weights are loaded."""
    actual, files = folder_digest(folder)
    if actual != wanted:
        raise RevisionMismatch(
            f"model {model!r}: checkpoint folder {folder} changed since the sweep resolved it "
            f"(revision digest {wanted}, the folder now holds {actual}); its cells fail rather "
            "than record another checkpoint's results: run the sweep again to evaluate the new "
            "weights"
        )
    return files


def check_unchanged(folder: Path, before: list[FileStat], model: str) -> None:
    """The files hashed are the files loaded: nothing was added, removed or rewritten since."""
    after = list_folder(folder)
    if after != before:
        changed = sorted({f.rel for f in after} ^ {f.rel for f in before}) or [
            a.rel for a, b in zip(after, before, strict=True) if a != b
        ]
        raise RevisionMismatch(
            f"model {model!r}: checkpoint folder {folder} changed while it was loaded "
            f"({', '.join(changed[:4])}); a checkpoint must not be written while a sweep reads it"
        )
