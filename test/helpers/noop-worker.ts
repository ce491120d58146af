// A GPU-queue worker for benchmarks that measure the orchestration alone: its run_shard returns a
// valid result at once (one unscored example per id, zero timings), so a sweep's pace is the
// workflow's, the recording's and Temporal's. Never part of a real stack.
import { NativeConnection, Worker } from '@temporalio/worker';
import { GPU_QUEUE, PYTHON_ACTIVITIES, type RunShardInput, type RunShardOutput } from '../../workflows/contract';

export function noopShard(input: RunShardInput): RunShardOutput {
  return {
    cellKey: input.cellKey,
    shardIndex: input.shardIndex,
    examples: Array.from({ length: input.exampleEnd - input.exampleStart }, (_, i) => ({
      exampleId: input.exampleStart + i,
      promptDigest: '0'.repeat(64),
      prediction: '',
      gold: ['-'],
      score: 0,
      promptTokens: 0,
      generatedTokens: 0,
    })),
    measurements: [],
    slices: [],
    timing: {
      queueSeconds: 0,
      dataSeconds: 0,
      loadSeconds: 0,
      prefillSeconds: 0,
      decodeSeconds: 0,
      nllSeconds: 0,
      scoringSeconds: 0,
      prefillTokens: 0,
      batches: 0,
    },
    worker: { workerVersion: 'noop', python: '-', torch: '-', device: 'cpu', gpuName: null, driver: null, cuda: null, hostname: 'noop', pid: process.pid },
    model: { family: 'noop', parameters: 0, stateBytes: 0, dtype: 'float32' },
  };
}

/** Starts the no-op worker; resolves to a function that stops it. */
export async function startNoopWorker(address: string, namespace: string, maxConcurrent = 64): Promise<() => Promise<void>> {
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: GPU_QUEUE,
    activities: { [PYTHON_ACTIVITIES.runShard]: async (input: RunShardInput) => noopShard(input) },
    maxConcurrentActivityTaskExecutions: maxConcurrent,
  });
  const running = worker.run();
  return async () => {
    worker.shutdown();
    await running;
    await connection.close();
  };
}
