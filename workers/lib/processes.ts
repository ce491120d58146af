// The embedded stack's processes as the operating system sees them. The daemon leads its own
// process group and every server it starts (PostgreSQL, the Temporal dev server, Python workers)
// stays in it, so "what the stack started" is exactly that group: a group id cannot be handed to a
// new process while any member lives, which makes signalling a leftover group safe. Linux /proc
// answers the rest (is this pid the PostgreSQL of our data directory?).
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Whether a process runs; a zombie (ended, not yet reaped by its new parent) does not. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The command line of a live process, or null. */
export function commandLine(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

/** Pids of the live members of a process group (read from /proc; zombies excluded). */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // fields after the command name, which is in parentheses and may hold spaces
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry));
    } catch {
      // it ended while we looked
    }
  }
  return members;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The postmaster's pid from a data directory's lock file, when the file exists. */
export function postmasterPid(dataDir: string): number | null {
  const file = join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** Is `pid` a PostgreSQL server running on this data directory? */
function isPostmasterOf(pid: number, dataDir: string): boolean {
  const cmd = commandLine(pid);
  return cmd !== null && cmd.some((a) => a.endsWith('postgres')) && cmd.includes(dataDir);
}

/**
 * Stops what is left of a stack whose daemon is gone: PostgreSQL first with a fast shutdown (so
 * its data stays clean and its lock file goes), then the rest of the daemon's process group,
 * SIGKILL after `graceMs`. Returns the pids it signalled.
 */
export async function reapStack(opts: { daemonPid: number | null; dataDir: string; log: (m: string) => void; graceMs?: number }): Promise<number[]> {
  const grace = opts.graceMs ?? 10_000;
  const signalled: number[] = [];
  const postmaster = postmasterPid(opts.dataDir);
  if (postmaster !== null && alive(postmaster)) {
    if (isPostmasterOf(postmaster, opts.dataDir)) {
      opts.log(`stopping PostgreSQL ${postmaster} left running on ${opts.dataDir}`);
      process.kill(postmaster, 'SIGINT');
      signalled.push(postmaster);
    }
  } else if (postmaster !== null) {
    // its server is gone; PostgreSQL would also clear it, unless the pid now names another process
    rmSync(join(opts.dataDir, 'postmaster.pid'), { force: true });
  }
  if (postmaster !== null && alive(postmaster) && !isPostmasterOf(postmaster, opts.dataDir)) {
    opts.log(`removing ${join(opts.dataDir, 'postmaster.pid')}: pid ${postmaster} is no PostgreSQL of this stack`);
    rmSync(join(opts.dataDir, 'postmaster.pid'), { force: true });
  }
  const group = opts.daemonPid !== null && !alive(opts.daemonPid) ? groupMembers(opts.daemonPid) : [];
  if (group.length) {
    opts.log(`stopping ${group.length} process(es) the stack daemon ${opts.daemonPid} left behind: ${group.join(', ')}`);
    for (const pid of group) {
      if (pid === postmaster) continue;
      try {
        process.kill(pid, 'SIGTERM');
        signalled.push(pid);
      } catch {
        // already gone
      }
    }
  }
  const deadline = Date.now() + grace;
  while (signalled.some(alive) && Date.now() < deadline) await pause(200);
  for (const pid of signalled.filter(alive)) {
    opts.log(`process ${pid} did not stop within ${grace / 1000} s; killing it`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  while (signalled.some(alive) && Date.now() < deadline + 5_000) await pause(100);
  return signalled;
}
