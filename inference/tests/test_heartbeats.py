"""ShardHeartbeats: a heartbeat is sent while the computation goes on, heartbeats arrive in order
and all of them, and a cancellation brought back by one stops the shard at the next beat."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from twice_inference.heartbeats import shard_heartbeats

SENDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")


def test_the_computation_goes_on_while_a_heartbeat_is_delivered() -> None:
    env = ActivityEnvironment()
    went_on = threading.Event()
    delivered: list[tuple[int, bool, str]] = []

    def on_heartbeat(*details: Any) -> None:
        # heartbeat 1 is delivered only once the shard has gone past it
        waited = went_on.wait(timeout=10)
        delivered.append((details[0]["examplesDone"], waited, threading.current_thread().name))

    env.on_heartbeat = on_heartbeat

    def shard() -> None:
        with shard_heartbeats(SENDER) as beats:
            beats.beat(1)
            went_on.set()
            beats.beat(2)
            beats.beat(3)

    env.run(shard)
    assert [(done, waited) for done, waited, _ in delivered] == [(1, True), (2, True), (3, True)]
    assert all(name.startswith("heartbeat") for _, _, name in delivered)


def test_a_cancellation_stops_the_next_beat() -> None:
    env = ActivityEnvironment()
    delivered: list[int] = []

    def cancel_on_first(*details: Any) -> None:
        delivered.append(details[0]["examplesDone"])
        env.cancel()

    env.on_heartbeat = cancel_on_first

    def shard() -> None:
        with shard_heartbeats(SENDER) as beats:
            beats.beat(1)
            beats.beat(2)

    with pytest.raises(CancelledError):
        env.run(shard)
    assert delivered == [1]


def test_a_heartbeat_that_fails_fails_the_shard() -> None:
    env = ActivityEnvironment()

    def broken(*_: Any) -> None:
        raise RuntimeError("the event loop is gone")

    env.on_heartbeat = broken

    def shard() -> None:
        with shard_heartbeats(SENDER) as beats:
            beats.beat(1)

    with pytest.raises(RuntimeError, match="event loop is gone"):
        env.run(shard)
