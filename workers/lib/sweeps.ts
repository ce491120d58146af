// Operations on sweeps that every front end shares (CLI now; web and Slack later): read and
// validate a spec file, start a sweep with a deterministic workflow id, find sweeps.
import { type Client } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { loadModelCatalog } from '../../activities/catalog';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import { type SweepWorkflowInput } from '../../workflows/messages';
import type { sweepWorkflow } from '../../workflows/sweep';
import { SpecError, parseSweepSpec, type SweepSpec } from '../../workflows/sweep-spec';
import { repoRoot } from './paths';

export interface SpecFile {
  spec: SweepSpec;
  text: string;
  /** path relative to the repository, as recorded with the sweep */
  file: string;
}

/** Reads and validates a spec; throws SpecError (naming file, field and value) before any I/O. */
export function readSpec(file: string): SpecFile {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new SpecError(file, [`cannot read the file ${path}`]);
  }
  const spec = parseSweepSpec(text, file, loadModelCatalog(repoRoot));
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
  });
  return { sweepId, handle, spec };
}
