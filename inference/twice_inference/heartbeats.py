"""A shard's progress heartbeats, sent from a thread of their own so that the device does not wait
for them.

``activity.heartbeat`` in a synchronous activity hands the heartbeat to the worker's event loop
and blocks until the loop has taken it: on a loaded machine that took about 10 ms a call (a
py-spy profile of a 100-shard sweep: about a quarter of the worker's idle while shards ran),
and the recall path calls it after every batch while it holds the device. Here a heartbeat is
handed to a sender thread and the computation goes on; the next heartbeat first waits for the
previous one (one in flight at most, so they arrive in order and none is dropped), and only then
asks whether the activity was cancelled, so a cancellation that a heartbeat brings back still
stops the shard at its next batch.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any

from temporalio import activity
from temporalio.exceptions import CancelledError

from twice_inference import contract


class ShardHeartbeats:
    """Progress heartbeats of one running activity (create it inside the activity: it sends
    from the activity's context), sent by ``sender``: a pool the worker keeps, since starting a
    thread per shard would be done on the device's path. The pool needs a thread per shard that
    computes at once; each of them has one heartbeat in flight at most."""

    def __init__(self, sender: Executor) -> None:
        # activity.heartbeat finds its activity through a context variable
        self._context = contextvars.copy_context()
        self._sender = sender
        self._in_flight: Future[Any] | None = None

    def beat(self, examples_done: int) -> None:
        """Sends ``examples_done`` without waiting for it; raises CancelledError when a heartbeat
        already delivered brought a cancellation back."""
        self._settle()
        if activity.is_cancelled():
            raise CancelledError("run_shard cancelled")
        details = contract.ShardHeartbeat(examples_done=examples_done).to_json()
        self._in_flight = self._sender.submit(self._context.run, activity.heartbeat, details)

    def close(self) -> None:
        """Waits for the last heartbeat; a failure to send it is raised here."""
        self._settle()

    def _settle(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()


@contextmanager
def shard_heartbeats(sender: Executor) -> Iterator[ShardHeartbeats]:
    """Heartbeats for the length of the block; the last one is delivered when it ends."""
    beats = ShardHeartbeats(sender)
    try:
        yield beats
    finally:
        beats.close()
