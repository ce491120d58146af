// A value parsed from files is parsed again only when a file changes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cachedFromFiles } from '../../workers/lib/file-cache';

describe('cachedFromFiles', () => {
  it('loads once while the files stay as they are, again after one changes or appears', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twice-cache-'));
    try {
      const a = join(dir, 'a.json');
      const b = join(dir, 'b.json');
      writeFileSync(a, '1');
      let loads = 0;
      const value = cachedFromFiles(
        () => [a, b],
        () => {
          loads++;
          return Number(JSON.parse(readFileSync(a, 'utf8')));
        },
        0,
      );
      assert.equal(value(), 1);
      assert.equal(value(), 1);
      assert.equal(loads, 1);
      writeFileSync(a, '22');
      utimesSync(a, new Date(), new Date(Date.now() + 5000));
      assert.equal(value(), 22);
      assert.equal(loads, 2);
      writeFileSync(b, 'x');
      value();
      assert.equal(loads, 3, 'a file that appears counts as a change');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not look at the files again within recheckMs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twice-cache-'));
    try {
      const a = join(dir, 'a.json');
      writeFileSync(a, '1');
      let loads = 0;
      const value = cachedFromFiles(
        () => [a],
        () => ++loads,
        60_000,
      );
      assert.equal(value(), 1);
      writeFileSync(a, '22');
      utimesSync(a, new Date(), new Date(Date.now() + 5000));
      assert.equal(value(), 1, 'the change waits for the next check');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
