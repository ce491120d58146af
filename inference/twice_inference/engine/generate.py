"""Batched greedy decoding and prompt log-likelihood over any ``LanguageModel``.

Prompts are sorted longest first, left-padded with a mask, prefilled once and stepped token by
token through the model's recurrent state. Before the first step the state is given room for
every step to come (``reserve_decoding``: a KV cache written in place); on a GPU the steps then
replay one captured CUDA graph (``decode_graph.py``), falling back to eager steps where a model's
step cannot be captured. ``engine/naive.py`` is the slow reference;
``tests/test_generate.py`` checks both give identical tokens (and matching NLL).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from twice_inference.protocols import LanguageModel

from .decode_graph import GraphedDecoder

BatchDone = Callable[[int], None]
"""Called after each batch with the number of prompts finished so far (for heartbeats); it may
raise to abort, e.g. when the activity was cancelled."""


@dataclass(frozen=True)
class Generation:
    tokens: list[int]  # generated ids, without the stop token
    prompt_tokens: int
    stopped: bool  # produced the stop token (False: hit max_new_tokens)


@dataclass
class GenerationTiming:
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    prefill_tokens: int = 0  # real prompt tokens, padding excluded
    batches: int = 0
    graphed_batches: int = 0  # batches whose decode steps replayed a CUDA graph
    graph_fallback: str | None = None  # why a batch could not, the first time it happened


@dataclass(frozen=True)
class GenerationResult:
    generations: list[Generation]  # in the order of the input prompts
    timing: GenerationTiming = field(default_factory=GenerationTiming)


def model_device(model: LanguageModel) -> torch.device:
    """The device a model's weights live on (CPU for a model without parameters)."""
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for parameter in parameters():
            return parameter.device
    return torch.device("cpu")


def longest_first_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first (as the paper's harness
    orders requests), so padding is small and an out-of-memory shows up in the first batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for begin in range(0, len(order), batch_size):
        yield order[begin : begin + batch_size]


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, T] ids, [B, T] mask) with each prompt right-aligned; mask is 1 on real tokens."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def _check_prompts(prompts: Sequence[Sequence[int]]) -> None:
    for index, prompt in enumerate(prompts):
        if len(prompt) == 0:
            raise ValueError(f"prompts[{index}] is empty; a prompt needs at least one token")


def _synchronize(device: torch.device) -> None:
    # CUDA kernels run asynchronously; without this the clock measures launch time only.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def greedy_generate(
    model: LanguageModel,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_id: int | None,
    batch_size: int,
    pad_id: int,
    on_batch_done: BatchDone | None = None,
    eos_id: int | None = None,
    cuda_graphs: bool = True,
) -> GenerationResult:
    """Greedy continuation of every prompt, at most ``max_new_tokens`` each, stopping a sequence
    at ``stop_id`` or at ``eos_id`` (end of text, where Hugging Face ``generate`` stops too);
    neither is included in its tokens. Results come back in input order. ``cuda_graphs`` off
    steps eagerly on a GPU too (the benchmark's A/B)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    _check_prompts(prompts)
    device = model_device(model)
    timing = GenerationTiming()
    results: list[Generation | None] = [None] * len(prompts)
    done_so_far = 0

    with torch.inference_mode():
        for batch in longest_first_batches([len(p) for p in prompts], batch_size):
            ids, mask = left_pad([prompts[i] for i in batch], pad_id, device)

            _synchronize(device)
            started = time.perf_counter()
            logits, state = model.prefill(ids, mask)
            next_ids = logits.argmax(dim=-1)
            reserve = getattr(model, "reserve_decoding", None)
            if reserve is not None:
                state = reserve(state, max_new_tokens - 1)
            decoder = GraphedDecoder(model.step, state, device, cuda_graphs)
            del state  # the decoder owns it now (and a graph replays its buffers)
            _synchronize(device)
            prefilled = time.perf_counter()

            generated: list[list[int]] = [[] for _ in batch]
            finished = [False] * len(batch)
            for position in range(max_new_tokens):
                # One device->host copy per step; the batch is small next to the model call.
                for row, token in enumerate(next_ids.tolist()):
                    if finished[row]:
                        continue  # the row keeps stepping with the batch, its outputs ignored
                    if token == stop_id or token == eos_id:
                        finished[row] = True
                    else:
                        generated[row].append(token)
                if all(finished) or position == max_new_tokens - 1:
                    break
                next_ids = decoder(next_ids).argmax(dim=-1)
            _synchronize(device)
            decoded = time.perf_counter()
            if decoder.graphed:
                timing.graphed_batches += 1
            elif timing.graph_fallback is None:
                timing.graph_fallback = decoder.fallback_reason

            for row, index in enumerate(batch):
                results[index] = Generation(generated[row], len(prompts[index]), finished[row])
            timing.prefill_seconds += prefilled - started
            timing.decode_seconds += decoded - prefilled
            timing.prefill_tokens += int(mask.sum().item())
            timing.batches += 1
            done_so_far += len(batch)
            if on_batch_done is not None:
                on_batch_done(done_so_far)

    return GenerationResult([r for r in results if r is not None], timing)


def prompt_nll(
    model: LanguageModel,
    prompts: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    on_batch_done: BatchDone | None = None,
) -> list[torch.Tensor]:
    """Per-token negative log-likelihood (nats, as float64 on CPU) of each prompt, teacher forced.

    Entry ``j`` of a prompt's tensor is the NLL of token ``j + 1`` given tokens ``0..j``: the first
    token has no prediction, so a prompt of length L yields L - 1 values.
    """
    _check_prompts(prompts)
    device = model_device(model)
    results: list[torch.Tensor | None] = [None] * len(prompts)
    done_so_far = 0
    with torch.inference_mode():
        for batch in longest_first_batches([len(p) for p in prompts], batch_size):
            ids, mask = left_pad([prompts[i] for i in batch], pad_id, device)
            logits = model.forward(ids, mask)
            width = ids.shape[1]
            # Row by row and only over real positions: a [B, T, V] float copy of a 50k vocabulary
            # would need tens of GB. bf16/fp16 logits are upcast; float32 is exact enough per token.
            compute_dtype = torch.promote_types(logits.dtype, torch.float32)
            for row, index in enumerate(batch):
                start = width - len(prompts[index])
                log_probs = torch.log_softmax(logits[row, start:-1].to(compute_dtype), dim=-1)
                targets = ids[row, start + 1 :].unsqueeze(-1)
                nll = -log_probs.gather(-1, targets).squeeze(-1)
                results[index] = nll.to(torch.float64).cpu()
            done_so_far += len(batch)
            if on_batch_done is not None:
                on_batch_done(done_so_far)
    return [r for r in results if r is not None]
