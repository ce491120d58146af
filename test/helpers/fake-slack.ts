// A local stand-in for Slack's Web API over real HTTP on 127.0.0.1: it records every call the
// app's WebClient makes (chat.postMessage, the two-step file upload of files.uploadV2 and the
// upload itself) and every POST to a slash command's response_url, and answers as Slack does.
// Also signs requests with Slack's real scheme, so tests can send slash commands to the app.
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';

export interface RecordedCall {
  method: string;
  /** form fields or JSON body, as the client sent it */
  body: Record<string, unknown>;
  /** what the fake answered */
  result?: Record<string, unknown>;
}

export interface FakeSlack {
  apiUrl: string;
  responseUrl(name: string): string;
  calls: RecordedCall[];
  /** POSTs to response URLs, by name */
  responses: Map<string, Array<Record<string, unknown>>>;
  /** bytes uploaded to the URL files.getUploadURLExternal handed out, by file id */
  uploads: Map<string, Buffer>;
  named(method: string): RecordedCall[];
  stop(): Promise<void>;
}

function parseBody(raw: Buffer, type: string): Record<string, unknown> {
  const text = raw.toString('utf8');
  if (type.startsWith('application/json')) return JSON.parse(text || '{}') as Record<string, unknown>;
  return Object.fromEntries(new URLSearchParams(text));
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: RecordedCall[] = [];
  const responses = new Map<string, Array<Record<string, unknown>>>();
  const uploads = new Map<string, Buffer>();
  let seq = 0;
  let base = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const url = req.url ?? '';
      const call: RecordedCall = {
        method: url.replace(/^\/api\//, '').split('?')[0]!,
        body: url.startsWith('/api/') ? parseBody(raw, String(req.headers['content-type'] ?? '')) : {},
      };
      const reply = (result: Record<string, unknown>) => {
        call.result = result;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
      };
      if (url.startsWith('/upload/')) {
        uploads.set(url.slice('/upload/'.length), raw);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('OK - ' + raw.length);
        return;
      }
      if (url.startsWith('/respond/')) {
        const name = url.slice('/respond/'.length);
        responses.set(name, [...(responses.get(name) ?? []), parseBody(raw, 'application/json')]);
        res.writeHead(200).end('ok');
        return;
      }
      const { method, body } = call;
      calls.push(call);
      seq += 1;
      switch (method) {
        case 'auth.test':
          return reply({ ok: true, user_id: 'UBOT', team_id: 'T1', bot_id: 'B1' });
        case 'chat.postMessage':
          return reply({ ok: true, channel: body.channel, ts: `1700000000.${String(seq).padStart(6, '0')}`, message: { text: body.text } });
        case 'files.getUploadURLExternal': {
          const id = `F${seq}`;
          return reply({ ok: true, upload_url: `${base}/upload/${id}`, file_id: id });
        }
        case 'files.completeUploadExternal': {
          const files = JSON.parse(String(body.files)) as Array<{ id: string; title?: string }>;
          return reply({ ok: true, files: files.map((f) => ({ id: f.id, title: f.title })) });
        }
        default:
          return reply({ ok: false, error: 'unknown_method' });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${base}/api/`,
    responseUrl: (name) => `${base}/respond/${name}`,
    calls,
    responses,
    uploads,
    named: (method) => calls.filter((c) => c.method === method),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Headers Slack would send with `body`: v0 = HMAC-SHA256(secret, "v0:<ts>:<body>"). */
export function slackSignature(secret: string, timestamp: number, body: string) {
  const sig = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return { 'x-slack-signature': sig, 'x-slack-request-timestamp': String(timestamp) };
}

export function slashCommandBody(fields: { text: string; user: string; channel?: string; responseUrl: string; command?: string }): string {
  return new URLSearchParams({
    token: 'legacy-unused',
    team_id: 'T1',
    team_domain: 'twice',
    channel_id: fields.channel ?? 'C0SWEEPS',
    channel_name: 'sweeps',
    user_id: fields.user,
    user_name: fields.user.toLowerCase(),
    command: fields.command ?? '/twice',
    text: fields.text,
    api_app_id: 'A1',
    response_url: fields.responseUrl,
    trigger_id: '1.2.3',
  }).toString();
}
