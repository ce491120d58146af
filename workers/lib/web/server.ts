// The web dashboard's HTTP server (node:http): pages, a small JSON API, server-sent events for
// the live sweeps list, and cancel / re-run, which act only through Temporal. Binds 127.0.0.1
// unless told otherwise; bound anywhere else it refuses to start without a token, and then wants
// it on every request that starts or cancels work.
import { type Client } from '@temporalio/client';
import { createReadStream, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelCatalog } from '../../../activities/catalog';
import { parseSweepSpec, SpecError } from '../../../workflows/sweep-spec';
import { compareSweeps, flippedExamples } from '../compare';
import { type Db } from '../db-client';
import { repoRoot } from '../paths';
import { loadJrtMargins, loadSweepReport, UnknownSweepError } from '../report/load';
import { startSweep, workflowIdOf } from '../sweeps';
import { cellExamples, listSweeps, loadCell, slicePerplexities } from './data';
import { cellPage, comparePage, errorPage, flipsPage, sweepPage, sweepRow, sweepsPage } from './pages';
import { vendorAssets, type VendorAsset } from './vendor';

export interface WebOptions {
  db: Db;
  client: Client;
  host?: string;
  /** 0 picks a free port */
  port?: number;
  /** required for cancel / re-run when `host` is not a loopback address */
  token?: string | null;
  /** how often the live list is refreshed, ms */
  pollMs?: number;
}

export interface WebServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const ASSETS: Record<string, VendorAsset> = {
  ...vendorAssets(join(repoRoot, 'node_modules')),
  'app.js': { file: join(dirname(fileURLToPath(import.meta.url)), 'app.js') },
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const intParam = (url: URL, name: string, fallback: number, max: number) => {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0 || v > max) throw new HttpError(400, `query parameter ${name} must be an integer in [0, ${max}], got "${raw}"`);
  return v;
};

// no inline script and no eval can run: charts are drawn by vega's expression interpreter
// (vendor.ts), not by code it compiles; vega-embed and the pages set inline styles
export const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";
const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function send(res: ServerResponse, status: number, type: string, body: string) {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', ...SECURITY_HEADERS });
  res.end(body);
}
const sendJson = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json', JSON.stringify(value));

export async function startWebServer(opts: WebOptions): Promise<WebServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token || null;
  if (!LOOPBACK.has(host) && !token) {
    throw new Error(`twice serve: binding ${host} exposes cancel and re-run to the network; set TWICE_SERVE_TOKEN first`);
  }
  const { db, client } = opts;
  const pollMs = opts.pollMs ?? 2000;
  const streams = new Set<ServerResponse>();

  function authorize(req: IncomingMessage) {
    // a header no HTML form can send: a cross-site page cannot make the browser post here
    if (req.headers['x-twice-request'] !== '1') throw new HttpError(403, 'missing the x-twice-request header');
    if (!token) return;
    const given = Buffer.from(req.headers.authorization?.replace(/^Bearer /, '') ?? '');
    const want = Buffer.from(token);
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw new HttpError(401, 'a valid token is required');
  }

  async function sweepOr404(id: string) {
    const sweep = await db.sweep.findUnique({ where: { id } });
    if (!sweep) throw new HttpError(404, `no sweep "${id}"`);
    return sweep;
  }

  function flipParams(url: URL) {
    const key = (name: string) => {
      const v = url.searchParams.get(name) ?? '';
      if (!/^[0-9a-f]{64}$/.test(v)) throw new HttpError(400, `query parameter ${name} must be a cell key (64 hex digits), got "${v}"`);
      return v;
    };
    return { baseKey: key('base'), otherKey: key('other'), offset: intParam(url, 'offset', 0, 1e9), limit: intParam(url, 'limit', 100, 1000) || 100 };
  }

  async function route(req: IncomingMessage, res: ServerResponse, url: URL) {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    if (method === 'GET' && parts.length === 0) return send(res, 200, 'text/html', sweepsPage(await listSweeps(db)));
    const asset = method === 'GET' && parts[0] === 'assets' && parts.length === 2 ? ASSETS[parts[1]!] : undefined;
    if (asset && (asset.body !== undefined || existsSync(asset.file!))) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=3600', ...SECURITY_HEADERS });
      if (asset.body !== undefined) res.end(asset.body);
      else createReadStream(asset.file!).pipe(res);
      return;
    }
    if (method === 'GET' && parts[0] === 'sweeps' && parts.length === 2) {
      // an unknown sweep id is a 404 (UnknownSweepError), found by the report's own read of the sweep
      const [report, slices] = await Promise.all([loadSweepReport(db, parts[1]!, { execution: false }), slicePerplexities(db, parts[1]!)]);
      return send(res, 200, 'text/html', sweepPage(report, slices));
    }
    if (method === 'GET' && parts[0] === 'cells' && parts.length === 2) {
      const cell = await loadCell(db, parts[1]!);
      if (!cell) throw new HttpError(404, `no cell "${parts[1]}"`);
      const wrongOnly = url.searchParams.get('wrong') === '1';
      const page = await cellExamples(db, cell.key, { wrongOnly, offset: intParam(url, 'offset', 0, 1e9), limit: intParam(url, 'limit', 50, 500) || 50 });
      return send(res, 200, 'text/html', cellPage(cell, page, wrongOnly));
    }
    if (method === 'GET' && parts[0] === 'compare' && parts.length === 1) {
      const base = url.searchParams.get('base');
      const other = url.searchParams.get('other');
      const sweeps = await db.sweep.findMany({ orderBy: { createdAt: 'desc' }, take: 200, select: { id: true } });
      const comparison = base && other ? await compareSweeps(db, base, other) : null;
      return send(res, 200, 'text/html', comparePage(sweeps, base, other ?? sweeps.find((s) => s.id !== base)?.id ?? null, comparison));
    }
    if (method === 'GET' && parts[0] === 'compare' && parts[1] === 'flips' && parts.length === 2) {
      const { baseKey, otherKey, offset, limit } = flipParams(url);
      return send(res, 200, 'text/html', flipsPage(baseKey, otherKey, await flippedExamples(db, baseKey, otherKey, { offset, limit }), offset, limit));
    }
    if (parts[0] !== 'api') throw new HttpError(404, `nothing at ${url.pathname}`);
    const api = parts.slice(1);
    if (method === 'GET' && api.length === 1 && api[0] === 'sweeps') return sendJson(res, 200, await listSweeps(db));
    if (method === 'GET' && api.length === 1 && api[0] === 'events') return openStream(res);
    if (method === 'GET' && api[0] === 'sweeps' && api.length === 3 && api[2] === 'margins') {
      await sweepOr404(api[1]!);
      return sendJson(res, 200, await loadJrtMargins(db, api[1]!));
    }
    // the grid: every cell with its interval, the frontier and the benchmark
    if (method === 'GET' && api[0] === 'sweeps' && api.length === 2) {
      return sendJson(res, 200, await loadSweepReport(db, api[1]!, { margins: false, execution: false }));
    }
    if (method === 'GET' && api[0] === 'cells' && api.length === 3 && api[2] === 'examples') {
      const wrongOnly = url.searchParams.get('wrong') === '1';
      return sendJson(
        res,
        200,
        await cellExamples(db, api[1]!, { wrongOnly, offset: intParam(url, 'offset', 0, 1e9), limit: intParam(url, 'limit', 50, 500) || 50 }),
      );
    }
    if (method === 'GET' && api[0] === 'compare' && api.length === 1) {
      const base = url.searchParams.get('base');
      const other = url.searchParams.get('other');
      if (!base || !other) throw new HttpError(400, 'query parameters base and other (sweep ids) are required');
      return sendJson(res, 200, await compareSweeps(db, base, other));
    }
    if (method === 'GET' && api[0] === 'compare' && api[1] === 'flips' && api.length === 2) {
      const { baseKey, otherKey, offset, limit } = flipParams(url);
      return sendJson(res, 200, await flippedExamples(db, baseKey, otherKey, { offset, limit }));
    }
    if (method === 'POST' && api[0] === 'sweeps' && api.length === 3 && api[2] === 'cancel') {
      authorize(req);
      const sweep = await sweepOr404(api[1]!);
      await client.workflow.getHandle(sweep.workflowId || workflowIdOf(sweep.id)).cancel();
      return sendJson(res, 202, { message: `cancellation requested for ${sweep.id}` });
    }
    if (method === 'POST' && api[0] === 'sweeps' && api.length === 3 && api[2] === 'rerun') {
      authorize(req);
      const sweep = await sweepOr404(api[1]!);
      // the spec as recorded, validated again against today's catalog
      const spec = parseSweepSpec(sweep.specYaml, sweep.specFile, loadModelCatalog(repoRoot));
      const { sweepId } = await startSweep(client, { spec, text: sweep.specYaml, file: sweep.specFile });
      return sendJson(res, 202, { message: `started sweep ${sweepId}`, sweepId });
    }
    throw new HttpError(404, `no ${method} ${url.pathname}`);
  }

  function openStream(res: ServerResponse) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', ...SECURITY_HEADERS });
    streams.add(res);
    res.on('close', () => streams.delete(res));
    void pushSweeps([res]);
  }

  async function pushSweeps(targets: Iterable<ServerResponse>) {
    const list = [...targets];
    if (!list.length) return;
    try {
      const rows = (await listSweeps(db)).map((s) => sweepRow(s).value).join('');
      for (const res of list) res.write(`event: sweeps\ndata: ${JSON.stringify({ rows })}\n\n`);
    } catch (err) {
      for (const res of list) res.write(`event: problem\ndata: ${JSON.stringify({ error: (err as Error).message })}\n\n`);
    }
  }
  const timer = setInterval(() => void pushSweeps(streams), pollMs);

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    route(req, res, url).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : err instanceof UnknownSweepError ? 404 : err instanceof SpecError ? 422 : 500;
      const message = err instanceof Error ? err.message : String(err);
      if (res.headersSent) return res.end();
      if (url.pathname.startsWith('/api/')) sendJson(res, status, { error: message });
      else send(res, status, 'text/html', errorPage(status, message));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    server,
    async close() {
      clearInterval(timer);
      for (const res of streams) res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
