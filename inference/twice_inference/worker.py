"""Process entry point: a Temporal worker polling the GPU task queue and running the synchronous
inference activities in a thread pool.

    python -m twice_inference.worker --address 127.0.0.1:7233 --namespace default \\
        --task-queue twice-gpu [--max-concurrent 1] [--prefetch 1] [--device auto] \\
        [--model-cache 1]   (default: $TWICE_WORKER_MODEL_CACHE, else 1)

SIGTERM/SIGINT stop polling and give running shards ``--graceful-shutdown-seconds`` to finish.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from twice_inference.activities import InferenceActivities, import_registries
from twice_inference.contract import GPU_QUEUE
from twice_inference.engine.device_info import DEVICE_CHOICES


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m twice_inference.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--address", default=env.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    parser.add_argument("--namespace", default=env.get("TEMPORAL_NAMESPACE", "default"))
    parser.add_argument("--task-queue", default=env.get("TWICE_GPU_QUEUE", GPU_QUEUE))
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=env.get("TWICE_DEVICE", "auto"))
    parser.add_argument(
        "--max-concurrent",
        type=_positive_int,
        default=1,
        help="shards run at once; one per GPU is usual, since each fills it with its batch",
    )
    parser.add_argument(
        "--prefetch",
        type=_non_negative_int,
        default=int(env.get("TWICE_WORKER_PREFETCH", "1")),
        help="shards taken beyond --max-concurrent: their examples are built and tokenized while "
        "the device computes, and each waits ready for the device (0: one round trip per shard)",
    )
    parser.add_argument(
        "--model-cache",
        type=_positive_int,
        # a string default goes through `type`, so a bad environment value is refused by name
        default=env.get("TWICE_WORKER_MODEL_CACHE", "1"),
        help="loaded models kept resident (LRU); a benchmark timed in rounds cycles through "
        "every benchmarked model, so keep them all",
    )
    parser.add_argument("--graceful-shutdown-seconds", type=float, default=30.0)
    return parser.parse_args(argv)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


async def serve(args: argparse.Namespace) -> None:
    activities = InferenceActivities(
        device=args.device, model_cache_size=args.model_cache, compute_slots=args.max_concurrent
    )
    # before polling: the first shard would import them while the sweep waits on it
    for family in import_registries():
        print(f"worker: model family {family!r} cannot be imported here", flush=True)
    # the prefetched shards hold activity slots (and threads) of their own, not compute slots
    slots = args.max_concurrent + args.prefetch
    client = await Client.connect(args.address, namespace=args.namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="shard") as pool:
        worker = Worker(
            client,
            task_queue=args.task_queue,
            activities=activities.activities(),
            activity_executor=pool,
            max_concurrent_activities=slots,
            graceful_shutdown_timeout=timedelta(seconds=args.graceful_shutdown_seconds),
        )
        async with worker:
            device = activities.describe_worker()["device"]
            print(
                f"worker ready: queue={args.task_queue} device={device} "
                f"compute={args.max_concurrent} prefetch={args.prefetch} "
                f"address={args.address} namespace={args.namespace}",
                flush=True,
            )
            await stop.wait()
            print("worker stopping: waiting for running shards", flush=True)
    print("worker stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    # Line-buffered so log collectors (kubectl logs, the embedded launcher) see lines as they come.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
