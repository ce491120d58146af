// Operations on sweeps that every front end shares (CLI now; web and Slack later): read and
// validate a spec file, start a sweep with a deterministic workflow id, find sweeps.
import { type Client } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { loadModelCatalog } from '../../activities/catalog';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import { type SweepProgress, type SweepWorkflowInput } from '../../workflows/messages';
import type { sweepWorkflow } from '../../workflows/sweep';
import { SpecError, parseSweepSpec, type SweepSpec } from '../../workflows/sweep-spec';
import { checkDataPaths } from './data-roots';
import { callerPath, repoRoot } from './paths';

export interface SpecFile {
  spec: SweepSpec;
  text: string;
  /** path relative to the repository, as recorded with the sweep */
  file: string;
}

/**
 * Largest spec file accepted. The spec travels in the workflow's input, which Temporal caps at
 * 2 MB per message; real specs are a few kilobytes.
 */
export const MAX_SPEC_BYTES = 256 * 1024;

/** The text of a spec file: UTF-8 only, so nothing is silently replaced or misread. */
function decodeSpec(bytes: Buffer, file: string): string {
  if (bytes.length > MAX_SPEC_BYTES) {
    throw new SpecError(file, [`the file is ${bytes.length} bytes; a sweep spec may hold at most ${MAX_SPEC_BYTES}`]);
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new SpecError(file, ['the file is UTF-16; save it as UTF-8']);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new SpecError(file, [`the file is not valid UTF-8 (byte ${at} is 0x${bytes[at]?.toString(16).padStart(2, '0')}); save it as UTF-8`]);
  }
}

/** Byte offset of the first byte that is not UTF-8: where lossy decoding first substituted. */
function firstInvalidUtf8(bytes: Buffer): number {
  const text = new TextDecoder('utf-8').decode(bytes);
  let offset = 0;
  let from = 0;
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) {
    offset += Buffer.byteLength(text.slice(from, i));
    from = i;
    // a U+FFFD written in the file is the bytes EF BF BD; a substituted one is not
    if (!(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) return offset;
  }
  return 0;
}

/** Reads and validates a spec; throws SpecError (naming file, field and value) before any I/O. */
export function readSpec(file: string): SpecFile {
  const path = callerPath(file);
  let bytes: Buffer;
  try {
    if (statSync(path).size > MAX_SPEC_BYTES) {
      throw new SpecError(file, [`the file is ${statSync(path).size} bytes; a sweep spec may hold at most ${MAX_SPEC_BYTES}`]);
    }
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof SpecError) throw err;
    throw new SpecError(file, [`cannot read the file ${path}`]);
  }
  const text = decodeSpec(bytes, file);
  const spec = parseSweepSpec(text, file, loadModelCatalog(repoRoot));
  // a relative dataDir means the caller's directory, not the worker's (not part of any cell key)
  for (const t of spec.tasks) {
    if (typeof t.params.dataDir === 'string' && !isAbsolute(t.params.dataDir)) t.params.dataDir = callerPath(t.params.dataDir);
  }
  for (const c of Object.values(spec.checkpoints ?? {})) {
    if (!isAbsolute(c.folder)) c.folder = callerPath(c.folder);
  }
  checkDataPaths(spec, file);
  return { spec, text, file: relative(repoRoot, path) };
}

export function gitSha(): string | null {
  try {
    const opts = { cwd: repoRoot, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'] };
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return null;
  }
}

export const workflowIdOf = (sweepId: string) => `sweep/${sweepId}`;

export function newSweepId(name: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${name}-${stamp}-${randomBytes(2).toString('hex')}`;
}

// The workflow task that expands a grid into its cells digests every cell: about 4 s for 10,000
// cells on a busy 2-core machine, more in the workflow sandbox. Past Temporal's default of 10 s
// the task times out and is retried from the start, forever (docs/measurements/2026-11-29-dispatch-10k.md).
const SWEEP_WORKFLOW_TASK_TIMEOUT = '60 seconds';

/**
 * Validates the spec file (unless given one already read), then starts its sweep. Nothing is
 * started or written on a bad spec.
 */
export async function startSweep(client: Client, specFile: string | SpecFile, opts: { taskQueue?: string } = {}) {
  const { spec, text, file } = typeof specFile === 'string' ? readSpec(specFile) : specFile;
  const sweepId = newSweepId(spec.name);
  const input: SweepWorkflowInput = { sweepId, specFile: file, specYaml: text, spec, gitSha: gitSha() };
  const handle = await client.workflow.start<typeof sweepWorkflow>('sweepWorkflow', {
    taskQueue: opts.taskQueue ?? ORCHESTRATOR_QUEUE,
    workflowId: workflowIdOf(sweepId),
    args: [input],
    workflowTaskTimeout: SWEEP_WORKFLOW_TASK_TIMEOUT,
  });
  return { sweepId, handle, spec };
}

/** One line of a running sweep's progress, as `twice status <sweep>` prints it. */
export function statusLine(p: SweepProgress): string {
  const line =
    `${p.sweepId}: ${p.phase}; cells ${p.cells.done}/${p.cells.total} done (${p.cells.reused} reused, ${p.cells.failed} failed); ` +
    `examples ${p.examples.done}/${p.examples.total}; shards in flight ${p.shards.inFlight}`;
  const bySweep = new Map<string, number>();
  for (const other of Object.values(p.waitingOn ?? {})) bySweep.set(other, (bySweep.get(other) ?? 0) + 1);
  const waits = [...bySweep].map(([other, n]) => `${n} cell${n === 1 ? '' : 's'} waiting on sweep ${other}`);
  return waits.length ? `${line}; ${waits.join(', ')}` : line;
}
