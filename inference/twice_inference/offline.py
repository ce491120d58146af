"""``python -m twice_inference.offline <payloads.json> --out results.jsonl``: run a sweep's
shards through the worker's own ``run_shard`` activity, without Temporal or PostgreSQL.

The payloads are what ``scripts/offline-shards.ts payloads`` wrote: the exact run_shard inputs the
sweep workflow sends for a spec. Each runs in Temporal's ``ActivityEnvironment`` (heartbeats and
cancellation checks work as in the worker), one line ``{"request", "output"}`` per shard, flushed
as it lands so a run stopped early keeps what it finished; ``scripts/offline-shards.ts margins``
reads the lines back. This is how a lent GPU machine, which has neither service, measures a grid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from .activities import InferenceActivities


def run(payloads: list[dict], out: Path, device: str, log=print, model_cache: int = 8) -> int:
    activities = InferenceActivities(device=device, model_cache_size=model_cache)
    env = ActivityEnvironment()
    started = time.time()
    done = 0
    with out.open("w") as sink:
        for index, payload in enumerate(payloads):
            output = env.run(activities.run_shard, payload)
            sink.write(json.dumps({"request": payload, "output": output}) + "\n")
            sink.flush()
            done += len(output["examples"])
            if index % 10 == 0 or index == len(payloads) - 1:
                log(
                    f"shard {index + 1}/{len(payloads)} {payload['model']['name']} "
                    f"{payload['task']['name']} {payload['strategy']['name']}: {done} examples, "
                    f"{time.time() - started:.1f}s"
                )
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twice_inference.offline")
    parser.add_argument("payloads", type=Path, help="a JSON list of run_shard inputs")
    parser.add_argument("--out", type=Path, required=True, help="results, one JSON line per shard")
    parser.add_argument("--device", default="auto", help="the worker's default device")
    parser.add_argument(
        "--model-cache",
        type=int,
        default=8,
        help="models kept loaded, as the embedded stack's worker keeps them: a benchmark's rounds "
        "visit every benchmarked model in turn",
    )
    args = parser.parse_args(argv)
    if args.model_cache < 1:
        parser.error(f"--model-cache must be >= 1, got {args.model_cache}")
    payloads = json.loads(args.payloads.read_text())
    if not isinstance(payloads, list) or not all(isinstance(p, dict) for p in payloads):
        print(f"{args.payloads}: expected a JSON list of run_shard inputs", file=sys.stderr)
        return 2
    run(payloads, args.out, args.device, model_cache=args.model_cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
