#!/usr/bin/env node
// Builds the binaries of a real Kubernetes control plane from Go modules (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubectl with its built-in kustomize, KWOK for fake GPU
// nodes) and caches them under TWICE_CACHE keyed by their versions. The Kubernetes tests start
// them on loopback ports (test/helpers/control-plane.ts). Plain Node with no dependencies:
// `node scripts/bootstrap.mjs --with-k8s` (npm test) runs it as a child process, and it runs
// standalone (`node scripts/k8s-toolchain.mjs`) to start the one-time build (15-20 minutes on
// 2 cores) early in the background.
// The Go build cache lives under TWICE_CACHE too, so a rebuild after a version bump is quick.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withCacheLock } from './cache-lock.mjs';

export const K8S_VERSION = '1.37.2';
const STAGING_VERSION = '0.37.2'; // the published twins of k8s.io/kubernetes' ./staging modules
export const ETCD_VERSION = '3.7.3';
export const KWOK_VERSION = '0.8.0';
export const K8S_BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'kwok'];

const cacheDir = process.env.TWICE_CACHE ?? join(homedir(), '.cache', 'twice');
const log = (msg) => process.stderr.write(`[bootstrap] ${msg}\n`);

/** Where the binaries of this version set live; `.ready` marks a finished build. */
export function k8sToolchainDir() {
  return join(cacheDir, `k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}`);
}

function goRun(go, args, cwd, env) {
  // nice: the build saturates both cores for minutes; tests and editors keep priority
  const r = spawnSync('nice', ['-n', '19', go, ...args], { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`go ${args.join(' ')} (in ${cwd}) failed with exit code ${r.status ?? r.signal}`);
}

function goOutput(go, args, env) {
  const r = spawnSync(go, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`go ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** KWOK ships no default stages: node init + lease heartbeat, and pods that go Ready and get deleted. */
function kwokStages(stageDir) {
  const parts = [
    'node/fast/node-initialize.yaml',
    'node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
    'pod/fast/pod-ready.yaml',
    'pod/fast/pod-delete.yaml',
  ].map((p) => readFileSync(join(stageDir, p), 'utf8').trim());
  return `${parts.join('\n---\n')}\n`;
}

function build(go, out) {
  const work = `${out}.work`;
  rmSync(work, { recursive: true, force: true });
  const bin = join(work, 'bin');
  mkdirSync(bin, { recursive: true });
  const env = {
    ...process.env,
    GOCACHE: process.env.TWICE_GOCACHE ?? join(cacheDir, 'go-build'),
    GOFLAGS: '-buildvcs=false -trimpath',
    CGO_ENABLED: '0',
    GOTOOLCHAIN: 'local',
  };
  const modCache = goOutput(go, ['env', 'GOMODCACHE'], env);

  // etcd: a scratch module whose main calls the server's own entry point
  const etcd = join(work, 'etcd');
  mkdirSync(etcd);
  writeFileSync(
    join(etcd, 'main.go'),
    'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n',
  );
  goRun(go, ['mod', 'init', 'twice.local/etcd'], etcd, env);
  goRun(go, ['get', `go.etcd.io/etcd/server/v3@v${ETCD_VERSION}`], etcd, env);
  goRun(go, ['mod', 'tidy'], etcd, env);
  goRun(go, ['build', '-ldflags', '-s -w', '-o', join(bin, 'etcd'), '.'], etcd, env);

  // the Kubernetes binaries: k8s.io/kubernetes is not meant to be required, so every module it
  // resolves from ./staging is replaced by its published twin, and each cmd's main is copied in
  const k8s = join(work, 'k8s');
  mkdirSync(k8s);
  goRun(go, ['mod', 'download', `k8s.io/kubernetes@v${K8S_VERSION}`], k8s, env);
  const kube = join(modCache, `k8s.io/kubernetes@v${K8S_VERSION}`);
  const replaces = readFileSync(join(kube, 'go.mod'), 'utf8')
    .split('\n')
    .map((l) => l.trim().match(/^(k8s\.io\/\S+)\s+=>\s+\.\/staging\//)?.[1])
    .filter((m) => m && !/sample-(cli-plugin|controller)$/.test(m))
    .map((m) => `\t${m} => ${m} v${STAGING_VERSION}`);
  const goMinor = goOutput(go, ['env', 'GOVERSION'], env).replace(/^go(\d+\.\d+).*/, '$1');
  writeFileSync(
    join(k8s, 'go.mod'),
    `module twice.local/k8s\n\ngo ${goMinor}.0\n\ngodebug default=go${goMinor}\n\nrequire k8s.io/kubernetes v${K8S_VERSION}\n\nreplace (\n${replaces.join('\n')}\n)\n`,
  );
  for (const [name, file] of [
    ['kube-apiserver', 'apiserver.go'],
    ['kube-controller-manager', 'controller-manager.go'],
    ['kube-scheduler', 'scheduler.go'],
    ['kubectl', 'kubectl.go'],
  ]) {
    mkdirSync(join(k8s, 'cmd', name), { recursive: true });
    copyFileSync(join(kube, 'cmd', name, file), join(k8s, 'cmd', name, 'main.go'));
  }
  goRun(go, ['mod', 'tidy'], k8s, env);
  const v = 'k8s.io/component-base/version';
  const minor = K8S_VERSION.split('.')[1];
  goRun(
    go,
    ['build', '-ldflags', `-s -w -X ${v}.gitVersion=v${K8S_VERSION} -X ${v}.gitMajor=1 -X ${v}.gitMinor=${minor}`, '-o', `${bin}/`, './cmd/...'],
    k8s,
    env,
  );

  // KWOK's module has no replace directives, so go install works as is
  goRun(go, ['install', '-ldflags', '-s -w', `sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}`], work, { ...env, GOBIN: bin });
  writeFileSync(join(bin, 'kwok-stages.yaml'), kwokStages(join(modCache, `sigs.k8s.io/kwok@v${KWOK_VERSION}`, 'kustomize', 'stage')));

  for (const b of K8S_BINARIES) if (!existsSync(join(bin, b))) throw new Error(`the build produced no ${b}`);
  rmSync(out, { recursive: true, force: true });
  renameSync(bin, out);
  rmSync(work, { recursive: true, force: true });
}

/** The folder with the built binaries, or null when they are not built (yet). */
export function k8sToolchainReady() {
  const out = k8sToolchainDir();
  return existsSync(join(out, '.ready')) ? out : null;
}

/**
 * Returns the folder with the control-plane binaries, building them once. Null when Go is missing
 * or TWICE_SKIP_K8S=1: the Kubernetes tests then skip with a message that says why.
 */
export function ensureK8sToolchain(go) {
  const out = k8sToolchainDir();
  if (existsSync(join(out, '.ready'))) return out;
  if (process.env.TWICE_SKIP_K8S === '1' || !go) return null;
  // another bootstrap (a second worktree, a background build) may be building the same set
  withCacheLock(basename(out), () => {
    if (!existsSync(join(out, '.ready'))) timedBuild(go, out);
  });
  return out;
}

function timedBuild(go, out) {
  const started = Date.now();
  log(
    `building the Kubernetes control plane ${K8S_VERSION} + etcd ${ETCD_VERSION} + KWOK ${KWOK_VERSION} from Go modules (one-time, 15-20 minutes on 2 cores)`,
  );
  build(go, out);
  const secs = Math.round((Date.now() - started) / 1000);
  writeFileSync(join(out, '.ready'), JSON.stringify({ k8s: K8S_VERSION, etcd: ETCD_VERSION, kwok: KWOK_VERSION, buildSeconds: secs }));
  log(`control plane built in ${Math.floor(secs / 60)} min ${secs % 60} s`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const go = spawnSync('go', ['version']).status === 0 ? 'go' : null;
    const dir = ensureK8sToolchain(go);
    if (!dir) throw new Error('go is not on PATH (or TWICE_SKIP_K8S=1)');
    process.stdout.write(`${dir}\n`);
  } catch (err) {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
