"""Every Hugging Face catalog entry, built on the meta device, has exactly the parameter shapes
of its real checkpoint (issue 15, defect 2: ``gla-2.7b-100b`` had 4 heads, the checkpoint 5, which
only shows as a wrong GatedRMSNorm width deep inside a load).

``fixtures/checkpoint_shapes.json`` holds, per model, each parameter (layer numbers folded into
``layers.{i}``, with the layers that have it) and its shape, after conversion to this package's
names. It was written from the hyperparameters in each checkpoint's published config.json (GLA:
fla-hub's config.json; hazy models: their training configs), so a catalog edit that changes a
shape fails here, not at load time on a GPU. Regenerate deliberately with
``python tests/test_checkpoint_shapes.py --write`` after checking the new values against the
checkpoint.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from twice_inference.models.registry import HFSource, build_on_meta, load_catalog

TABLE = Path(__file__).parent / "fixtures" / "checkpoint_shapes.json"
_LAYER = re.compile(r"(^|\.)layers\.(\d+)\.")


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5"; [] (not in a layer) -> "-"."""
    if not indices:
        return "-"
    spans: list[list[int]] = []
    for i in sorted(indices):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def folded_shapes(entry) -> dict[str, str]:
    """{"<name with layers.{i}> <AxB>": "<layers that have it>"} in a stable order."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for name, parameter in build_on_meta(entry).named_parameters():
        match = _LAYER.search(name)
        folded = _LAYER.sub(lambda m: f"{m.group(1)}layers.{{i}}.", name, count=1)
        key = f"{folded} {'x'.join(map(str, parameter.shape))}"
        if match:
            grouped[key].append(int(match.group(2)))
        else:
            grouped.setdefault(key, [])
    return {key: _ranges(grouped[key]) for key in sorted(grouped)}


def hf_entries():
    return [e for e in load_catalog().models if isinstance(e.source, HFSource)]


def test_table_covers_every_checkpoint() -> None:
    table = json.loads(TABLE.read_text())
    assert sorted(table) == sorted(e.name for e in hf_entries())


@pytest.mark.parametrize("entry", hf_entries(), ids=lambda e: e.name)
def test_shapes_match_the_checkpoint(entry) -> None:
    expected = json.loads(TABLE.read_text())[entry.name]
    actual = folded_shapes(entry)
    problems = [
        f"{key} (layers {layers}): the catalog builds {actual.get(key, 'no such tensor')}"
        for key, layers in expected.items()
        if actual.get(key) != layers
    ]
    problems += [f"{key}: not in the checkpoint" for key in actual if key not in expected]
    assert not problems, f"{entry.name}: " + "; ".join(problems[:6])


if __name__ == "__main__":
    if "--write" not in sys.argv:
        raise SystemExit("usage: python tests/test_checkpoint_shapes.py --write")
    TABLE.write_text(
        json.dumps({e.name: folded_shapes(e) for e in hf_entries()}, indent=1, sort_keys=True)
        + "\n"
    )
    print(f"wrote {TABLE}")
