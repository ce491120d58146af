"""Decode steps replayed from a CUDA graph.

A decode step of a 360M model is a few thousand small kernels over a batch of single tokens; on
an H200 the GPU finishes them faster than Python can launch them, so launches set the pace.
Capturing one step as a CUDA graph and replaying it costs one launch per step instead.

A graph replays fixed device addresses, so ``GraphedDecoder`` keeps one state whose tensors stay
put: the step is captured once on that state, and the captured step ends by copying each tensor
of the state it returns into the one it was given (nothing to copy where the step already wrote
in place, as the Transformer's KV cache does). Capture needs a state of fixed shapes, hence the
cache's reservation before decoding (``DecoderLM.reserve_decoding``). The first step runs
eagerly on a side stream, which also warms up what the capture must not do first (cuBLAS
handles, autotuning, lazily built tables). A step that cannot be captured (a host sync inside,
a state that changes shape or kind) makes the decoder fall back to eager steps for the batch,
and it says why in ``fallback_reason``. Compared with eager decoding on the GPU step by step by
``bench.graph_parity``: bitwise equal in float32; in bf16 they differ by a few units in the last
place, as two eager runs do, which flips near-tied argmaxes. The leaf matching is tested on the
CPU in ``tests/test_decode_graph.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

StepFn = Any  # (token_ids [B], state) -> (logits [B, V], state)


def state_tensors(obj: object) -> Iterator[torch.Tensor]:
    """Every tensor inside a decoding state, in a fixed order: dataclasses, plain objects'
    attributes, lists, tuples and dicts, depth first."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from state_tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from state_tensors(value)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            yield from state_tensors(getattr(obj, name))
    elif hasattr(obj, "__dict__") and not isinstance(obj, (torch.nn.Module, type)):
        for value in vars(obj).values():
            yield from state_tensors(value)


def copy_back(into: object, new: object) -> None:
    """Copy each tensor of the state ``new`` into the matching tensor of ``into`` (same
    structure, same shapes and dtypes), skipping tensors a step wrote in place. Raises
    ``ValueError`` naming the first mismatch: such a step cannot replay from fixed buffers."""
    olds, news = list(state_tensors(into)), list(state_tensors(new))
    if len(olds) != len(news):
        raise ValueError(f"the step returned {len(news)} state tensors for {len(olds)}")
    for index, (old, fresh) in enumerate(zip(olds, news, strict=True)):
        if old.shape != fresh.shape or old.dtype != fresh.dtype:
            raise ValueError(
                f"state tensor {index} changed from {tuple(old.shape)} {old.dtype} to "
                f"{tuple(fresh.shape)} {fresh.dtype}"
            )
        if fresh.data_ptr() != old.data_ptr():
            old.copy_(fresh)


class GraphedDecoder:
    """Steps one batch: the first call eagerly, then (on CUDA, when ``graphs`` is on) by replaying
    a captured step. ``__call__`` returns the step's logits; with a graph they live in a buffer
    the next replay overwrites, so read them before the next call."""

    def __init__(self, step: StepFn, state: object, device: torch.device, graphs: bool) -> None:
        self._step = step
        self._state = state
        self._device = device
        self._try_graph = graphs and device.type == "cuda"
        self._graph: torch.cuda.CUDAGraph | None = None
        self._ids: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None
        self.fallback_reason: str | None = None

    @property
    def graphed(self) -> bool:
        return self._graph is not None

    def __call__(self, token_ids: torch.Tensor) -> torch.Tensor:
        if self._graph is not None:
            assert self._ids is not None and self._logits is not None
            self._ids.copy_(token_ids)
            self._graph.replay()
            return self._logits
        if not self._try_graph:
            logits, self._state = self._step(token_ids, self._state)
            return logits
        # The warm-up step runs on a side stream, as capture does (torch.cuda.graphs' advice).
        side = torch.cuda.Stream(self._device)
        side.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(side):
            logits, self._state = self._step(token_ids, self._state)
        torch.cuda.current_stream(self._device).wait_stream(side)
        self._try_graph = False  # one capture attempt per batch
        self._capture(token_ids)
        return logits

    def _capture(self, token_ids: torch.Tensor) -> None:
        ids = token_ids.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                logits, new_state = self._step(ids, self._state)
                copy_back(self._state, new_state)
        except Exception as error:  # noqa: BLE001 - any capture failure means eager steps
            self.fallback_reason = f"{type(error).__name__}: {error}"[:300]
            torch.cuda.synchronize(self._device)
            return
        self._graph, self._ids, self._logits = graph, ids, logits
