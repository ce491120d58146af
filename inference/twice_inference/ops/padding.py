"""Whether a key mask is all real tokens, decided once per model call.

Several layers take a fast path only for unpadded batches (attention without a mask tensor, the
Taylor kernels, a KV cache that needs no zeroing). Each asking ``bool(mask.all())`` for itself
made one host-device sync per layer, which stalls the launch queue every layer. A model's
``forward`` / ``prefill`` answers once for its mask inside ``known_padding``; ``mask_is_full``
then returns that answer for the same tensor object with no sync, and falls back to asking the
device for any other mask (a slice, an encoder region, a caller outside a model).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_known: ContextVar[tuple[torch.Tensor, bool] | None] = ContextVar("known_padding", default=None)


@contextmanager
def known_padding(mask: torch.Tensor) -> Iterator[bool]:
    """Decide (one sync) whether ``mask`` is all True; inside, ``mask_is_full(mask)`` reuses it."""
    full = bool(mask.all())
    token = _known.set((mask, full))
    try:
        yield full
    finally:
        _known.reset(token)


def mask_is_full(mask: torch.Tensor, *, ask: bool = True) -> bool:
    """True when every position of ``mask`` is a real token. ``ask=False``: False unless already
    known to be full (for callers that have their own, more general check to fall back on)."""
    known = _known.get()
    if known is not None and known[0] is mask:
        return known[1]
    return bool(mask.all()) if ask else False
