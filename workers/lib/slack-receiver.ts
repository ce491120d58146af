// The Slack app's HTTP front door (Bolt's Receiver interface). Bolt's own HTTPReceiver checks the
// signature and rejects requests older than five minutes, but lets through timestamps from the
// future and the same signed request sent twice; this one refuses both, and everything it refuses
// gets a 401 before any listener runs. The acknowledgement is the HTTP response, so the 3-second
// window only covers the listener's ack(), never the work after it.
import { type App, type Receiver, type ReceiverEvent, verifySlackRequest } from '@slack/bolt';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';

/** Slack's replay window: a request may be this old, and no more (either way). */
export const MAX_SKEW_SECONDS = 300;
/** Clock drift tolerated on the future side before a request counts as forged. */
export const MAX_FUTURE_SECONDS = 30;
const MAX_BODY_BYTES = 1 << 20;

export type Rejection = 'missing signature' | 'bad signature' | 'stale timestamp' | 'future timestamp' | 'replayed' | 'malformed';

export interface SlackReceiverOptions {
  signingSecret: string;
  /** path Slack posts slash commands and interactions to */
  path?: string;
  /** told about every refused request (the process logs them) */
  onReject?: (why: Rejection, detail: string) => void;
  now?: () => number;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class VerifyingReceiver implements Receiver {
  private app?: App;
  private server?: Server;
  /** signatures seen within the replay window, with when they may be forgotten (ms) */
  private readonly seen = new Map<string, number>();

  constructor(private readonly opts: SlackReceiverOptions) {}

  init(app: App): void {
    this.app = app;
  }

  /** Checks a request; returns why it is refused, or null when it may be processed. */
  check(headers: IncomingMessage['headers'], rawBody: string): { why: Rejection; detail: string } | null {
    const signature = headers['x-slack-signature'];
    const tsHeader = headers['x-slack-request-timestamp'];
    if (typeof signature !== 'string' || typeof tsHeader !== 'string' || !signature || !tsHeader) {
      return { why: 'missing signature', detail: 'no x-slack-signature or x-slack-request-timestamp header' };
    }
    const ts = Number(tsHeader);
    if (!Number.isInteger(ts)) return { why: 'malformed', detail: `timestamp "${tsHeader}" is not an integer` };
    const nowMs = (this.opts.now ?? Date.now)();
    const now = Math.floor(nowMs / 1000);
    if (ts > now + MAX_FUTURE_SECONDS) return { why: 'future timestamp', detail: `timestamp ${ts} is ${ts - now}s ahead` };
    if (ts < now - MAX_SKEW_SECONDS) return { why: 'stale timestamp', detail: `timestamp ${ts} is ${now - ts}s old` };
    try {
      verifySlackRequest({
        signingSecret: this.opts.signingSecret,
        body: rawBody,
        headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': ts },
      });
    } catch (err) {
      return { why: 'bad signature', detail: err instanceof Error ? err.message : String(err) };
    }
    for (const [sig, expires] of this.seen) if (expires < nowMs) this.seen.delete(sig);
    if (this.seen.has(signature)) return { why: 'replayed', detail: `signature ${signature.slice(0, 16)}... seen before` };
    this.seen.set(signature, (ts + MAX_SKEW_SECONDS + MAX_FUTURE_SECONDS) * 1000);
    return null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const path = this.opts.path ?? '/slack/events';
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== path) {
      res.writeHead(404).end();
      return;
    }
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      res.writeHead(413).end();
      return;
    }
    const refused = this.check(req.headers, raw);
    if (refused) {
      this.opts.onReject?.(refused.why, refused.detail);
      res.writeHead(401).end();
      return;
    }
    const type = String(req.headers['content-type'] ?? '');
    let body: Record<string, unknown>;
    try {
      if (type.startsWith('application/json')) {
        body = JSON.parse(raw) as Record<string, unknown>;
      } else {
        const form = Object.fromEntries(new URLSearchParams(raw));
        // interactions arrive as a form with one JSON field
        body = typeof form.payload === 'string' ? (JSON.parse(form.payload) as Record<string, unknown>) : form;
      }
    } catch {
      this.opts.onReject?.('malformed', 'body is neither a form nor JSON');
      res.writeHead(400).end();
      return;
    }
    if (body.type === 'url_verification' && typeof body.challenge === 'string') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(body.challenge);
      return;
    }
    let acked = false;
    const event: ReceiverEvent = {
      body,
      ack: async (response?: unknown) => {
        if (acked) return;
        acked = true;
        if (response === undefined || response === '') res.writeHead(200).end();
        else if (typeof response === 'string') res.writeHead(200, { 'content-type': 'text/plain' }).end(response);
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response));
      },
    };
    try {
      await this.app!.processEvent(event);
    } catch {
      if (!acked) res.writeHead(500).end();
    }
    // a listener that never acknowledged still owes Slack an answer
    if (!acked && !res.headersSent) res.writeHead(200).end();
  }

  async start(port = 3000, host = '0.0.0.0'): Promise<Server> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server;
  }

  port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
