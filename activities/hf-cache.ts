// The local Hugging Face hub cache, read offline: where it is (the same variables huggingface_hub
// and the Python worker read) and which commit a branch or tag of a model points to there. A
// catalog entry may name a ref such as `main`; pinning it to the commit the cache holds makes
// the commit part of every cell key, so a moved branch re-runs its cells and an unchanged one
// reuses them.
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const COMMIT = /^[0-9a-f]{40}$/;

export function hubCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return join(env.HF_HOME ?? join(homedir(), '.cache', 'huggingface'), 'hub');
}

export function hubRepoDir(kind: 'model' | 'dataset', hfId: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(hubCache(env), `${kind}s--${hfId.replace('/', '--')}`);
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The commit `ref` of model `hfId` stands for on this machine: `ref` itself when it is a commit,
 * else what the cache's `refs/<ref>` holds (written by `twice pull`). Null when it cannot be told:
 * the checkpoint is a plain folder under TWICE_MODEL_DIR (which the worker reads first and which
 * has no commits), or the ref was never pulled (then `twice plan` and `twice run` list the
 * checkpoint as missing).
 */
export function resolveHubRef(hfId: string, ref: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (COMMIT.test(ref)) return ref;
  if (env.TWICE_MODEL_DIR && isDir(join(env.TWICE_MODEL_DIR, hfId))) return null;
  let text: string;
  try {
    text = readFileSync(join(hubRepoDir('model', hfId, env), 'refs', ref), 'utf8').trim();
  } catch {
    return null;
  }
  if (!COMMIT.test(text)) throw new Error(`the Hugging Face cache's refs/${ref} of ${hfId} holds "${text.slice(0, 80)}", not a commit`);
  return text;
}
