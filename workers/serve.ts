// `twice serve`: the web dashboard on the results database and Temporal (the embedded stack, or
// DATABASE_URL and TEMPORAL_ADDRESS). The embedded stack starts one of its own; this entry point is
// for deployments and for a second dashboard beside it. Stops on SIGINT / SIGTERM.
import { loadEnv } from './lib/env';
import { openSession } from './lib/session';
import { startWebServer } from './lib/web/server';

export async function serve(opts: { host?: string; port?: number }): Promise<void> {
  const env = loadEnv();
  const session = await openSession({ start: false });
  const web = await startWebServer({
    db: session.db,
    client: session.client,
    host: opts.host ?? env.serve.host,
    port: opts.port ?? env.serve.port,
    token: env.serve.token,
  });
  process.stdout.write(`twice dashboard: ${web.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await web.close();
  await session.close();
}
