"""engine/decode_graph.py on the CPU: how a step's returned state is matched to the fixed one a
graph replays (the capture itself needs a GPU: ``bench.end_to_end`` compares graphed and eager
decoding token for token there), and that without a GPU the decoder steps eagerly."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from twice_inference.engine.decode_graph import GraphedDecoder, copy_back, state_tensors
from twice_inference.models.layers import DecodeState


@dataclass
class _Pair:
    a: torch.Tensor
    b: torch.Tensor


def test_state_tensors_walks_every_container_in_order() -> None:
    t = [torch.full((1,), float(i)) for i in range(5)]
    state = DecodeState([_Pair(t[0], t[1]), (t[2],), {"x": t[3]}], t[4])
    assert [float(x) for x in state_tensors(state)] == [0, 1, 2, 3, 4]


def test_copy_back_copies_new_tensors_and_skips_in_place_ones() -> None:
    kept = torch.zeros(2)
    into = _Pair(kept, torch.zeros(3))
    new = _Pair(kept, torch.arange(3.0))
    kept.fill_(7)  # as a step writing in place would
    copy_back(into, new)
    assert into.a is kept and kept.tolist() == [7, 7]
    assert into.b.tolist() == [0, 1, 2] and into.b is not new.b


def test_copy_back_names_a_state_that_changed_shape() -> None:
    with pytest.raises(ValueError, match=r"state tensor 1 changed from \(3,\) .* to \(4,\)"):
        copy_back(_Pair(torch.zeros(2), torch.zeros(3)), _Pair(torch.zeros(2), torch.zeros(4)))
    with pytest.raises(ValueError, match="returned 1 state tensors for 2"):
        copy_back(_Pair(torch.zeros(2), torch.zeros(3)), [torch.zeros(2)])


def test_on_a_cpu_the_decoder_steps_eagerly() -> None:
    calls = []

    def step(ids: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(int(state))
        return ids.float() + state, state + 1

    decoder = GraphedDecoder(step, torch.tensor(10.0), torch.device("cpu"), graphs=True)
    outs = [decoder(torch.tensor([1, 2])).tolist() for _ in range(3)]
    assert outs == [[11, 12], [12, 13], [13, 14]] and calls == [10, 11, 12]
    assert not decoder.graphed and decoder.fallback_reason is None
