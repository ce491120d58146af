"""DeviceSlots: waiting shards get the device in arrival order, a shard of the loaded model before
shards of other models, a heartbeat timeout keeps a shard's place, and one that leaves the queue
lets the next one through."""

from __future__ import annotations

import threading
from collections.abc import Callable

from twice_inference.activities import DeviceSlots


def _queue(
    slots: DeviceSlots, name: str, resident: Callable[[], bool], order: list[str]
) -> threading.Thread:
    """Starts a shard that waits for a slot (1 s at a time, as run_shard heartbeats), records
    that it got one and gives it back; returns once the shard holds its place in the queue."""
    queued = threading.Event()

    def run() -> None:
        with slots.waiting(resident) as acquire:
            queued.set()
            while not acquire(0.05):
                pass
        order.append(name)
        slots.release()

    thread = threading.Thread(target=run)
    thread.start()
    assert queued.wait(timeout=10)
    return thread


def _hold(slots: DeviceSlots) -> None:
    with slots.waiting(lambda: False) as acquire:
        assert acquire(1.0)


def test_a_shard_of_the_loaded_model_goes_first() -> None:
    slots = DeviceSlots(1)
    _hold(slots)
    order: list[str] = []
    other = _queue(slots, "other model", lambda: False, order)
    loaded = _queue(slots, "loaded model", lambda: True, order)
    slots.release()
    for t in (other, loaded):
        t.join(timeout=10)
    assert order == ["loaded model", "other model"]


def test_otherwise_shards_go_in_arrival_order() -> None:
    slots = DeviceSlots(1)
    _hold(slots)
    order: list[str] = []
    threads = [_queue(slots, f"shard {i}", lambda: False, order) for i in range(4)]
    slots.release()
    for t in threads:
        t.join(timeout=10)
    assert order == [f"shard {i}" for i in range(4)]


def test_a_timed_out_wait_keeps_its_place_and_a_shard_that_leaves_frees_it() -> None:
    slots = DeviceSlots(1)
    _hold(slots)
    order: list[str] = []
    with slots.waiting(lambda: False) as first:
        assert not first(0.01)  # the device is busy: the shard heartbeats and asks again
        later = _queue(slots, "later", lambda: False, order)
        slots.release()
        assert first(1.0)  # still ahead of the later shard
        assert order == []
        slots.release()
    later.join(timeout=10)
    assert order == ["later"]

    # a shard cancelled while it waits leaves the queue; the one behind it is not held up
    _hold(slots)
    with slots.waiting(lambda: False) as cancelled:
        assert not cancelled(0.01)
        behind = _queue(slots, "behind", lambda: False, order)
    slots.release()
    behind.join(timeout=10)
    assert order == ["later", "behind"]


def test_several_slots_are_held_at_once() -> None:
    slots = DeviceSlots(2)
    _hold(slots)
    _hold(slots)
    with slots.waiting(lambda: True) as third:
        assert not third(0.01)
        slots.release()
        assert third(1.0)
