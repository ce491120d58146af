// Watches the stack daemon from outside its process group. When the daemon is gone without having
// stopped its servers (SIGKILL, the OOM killer), this stops what it left: PostgreSQL with a fast
// shutdown, then the rest of the daemon's process group. Started by the daemon itself, detached;
// exits once the daemon is gone and its group is empty. Arguments: <daemon pid> <postgres data dir>.
import { alive, reapStack } from './lib/processes';

const [daemonArg, dataDir] = process.argv.slice(2);
const daemonPid = Number(daemonArg);
if (!Number.isInteger(daemonPid) || daemonPid <= 1 || !dataDir) {
  process.stderr.write('usage: stack-watchdog <daemon pid> <postgres data dir>\n');
  process.exit(2);
}
const log = (m: string) => console.log(`${new Date().toISOString()} watchdog: ${m}`);

const POLL_MS = 500;
// polling, not an exit event: the daemon is no child of ours, so nothing else tells us
while (alive(daemonPid)) await new Promise((r) => setTimeout(r, POLL_MS));
const reaped = await reapStack({ daemonPid, dataDir, log });
if (reaped.length) log(`the stack daemon ${daemonPid} ended without stopping its servers; stopped ${reaped.join(', ')}`);
