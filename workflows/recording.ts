// Batched recording for the sweep workflow: a shard that finishes while a batch is being written
// waits for the next one, so a sweep runs one recording activity (and one transaction) for as
// many shards as finished in the meantime, instead of one per shard. Recording then keeps pace
// with workers that finish a shard every few hundred milliseconds, and a shard still counts
// against the sweep's window until it is recorded, so nothing waits unbounded in memory.
import { type RecordShardInput, type RecordShardResult, type RecordShardsInput } from './messages';

// Temporal caps one payload at 2 MB; the shards of a batch travel in one activity input.
export const RECORD_BATCH_BYTES = 1_000_000;
export const RECORD_BATCH_SHARDS = 64;

interface Waiting {
  item: RecordShardInput;
  bytes: number;
  resolve: (r: RecordShardResult) => void;
  reject: (err: unknown) => void;
}

/** Returns `record(shard)`, which resolves once the batch holding the shard is written. */
export function batchedRecorder(
  recordShards: (input: RecordShardsInput) => Promise<RecordShardResult[]>,
  sweep: { sweepId: string; gitSha: string | null },
): (item: RecordShardInput) => Promise<RecordShardResult> {
  const queue: Waiting[] = [];
  let writing = false;

  const nextBatch = (): Waiting[] => {
    const batch: Waiting[] = [];
    let bytes = 0;
    // one shard always goes, however large: alone it is within Temporal's limit
    while (queue.length > 0 && batch.length < RECORD_BATCH_SHARDS && (batch.length === 0 || bytes + queue[0]!.bytes <= RECORD_BATCH_BYTES)) {
      const next = queue.shift()!;
      bytes += next.bytes;
      batch.push(next);
    }
    return batch;
  };

  const drain = async () => {
    if (writing) return;
    writing = true;
    try {
      while (queue.length > 0) {
        const batch = nextBatch();
        try {
          const results = await recordShards({ ...sweep, shards: batch.map((w) => w.item) });
          batch.forEach((w, i) => w.resolve(results[i]!));
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      writing = false;
    }
  };

  return (item) =>
    new Promise<RecordShardResult>((resolve, reject) => {
      queue.push({ item, bytes: JSON.stringify(item).length, resolve, reject });
      void drain();
    });
}
