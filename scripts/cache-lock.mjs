// The lock that one-time installs in the cache run under, shared by the bootstrap and the control
// plane build (which may also run on its own). Plain Node with no dependencies: it runs before
// `npm ci`.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const cacheDir = process.env.TWICE_CACHE ?? join(homedir(), '.cache', 'twice');
const log = (msg) => process.stderr.write(`[bootstrap] ${msg}\n`);

/**
 * Runs a one-time install under an exclusive lock in the cache, so that several clones (or a test
 * run beside `npm start`) bootstrapping at once wait for one build instead of racing on the same
 * `.partial` folder. A lock whose holder has died is taken over.
 */
export function withCacheLock(name, fn) {
  mkdirSync(cacheDir, { recursive: true });
  const lock = join(cacheDir, `${name}.lock`);
  let waited = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        // the holder has made the folder but not yet written its pid
      }
      if (Number.isInteger(holder) && !alive(holder)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!waited) log(`waiting for another bootstrap to finish ${name}`);
      waited = true;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
