// `twice bigrams build <corpus>`: counts a training corpus's bigrams once into the content-addressed
// table the perplexity task reads (inference/twice_inference/tasks/bigrams.py does the counting,
// vectorised, with a progress bar and documents/s). A file path is read from the caller's
// directory; `synthetic:<language>` names a generated language's training stream.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { callerPath, readToolchain, repoRoot } from './lib/paths';

export function buildBigrams(corpus: string, opts: { tokenizer?: string; out?: string }): number {
  const args = ['-m', 'twice_inference.tasks.bigrams', 'build', corpus.startsWith('synthetic:') ? corpus : callerPath(corpus)];
  if (opts.tokenizer) args.push('--tokenizer', opts.tokenizer);
  if (opts.out) args.push('--out', callerPath(opts.out));
  const r = spawnSync(readToolchain().python, args, {
    cwd: join(repoRoot, 'inference'),
    env: { ...process.env, PYTHONPATH: join(repoRoot, 'inference') },
    stdio: 'inherit',
  });
  return r.status ?? 1;
}
