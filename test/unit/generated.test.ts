// Generated files stay in step with their TypeScript sources (`npm run generate` rewrites them).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GENERATED, render } from '../../scripts/generate';
import { repoRoot } from '../../workers/lib/paths';

describe('generated files', () => {
  for (const [file, make] of Object.entries(GENERATED)) {
    it(`${file} is up to date`, () => {
      assert.equal(readFileSync(join(repoRoot, file), 'utf8'), render(make()), `${file} is stale: run npm run generate`);
    });
  }
});
