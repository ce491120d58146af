// `twice slack`: the Slack app as a process of its own (HTTP mode). Slack posts slash commands to
// http://<host>:$TWICE_SLACK_PORT/slack/events; the manifest is docs/slack-app-manifest.yaml.
// It reaches Temporal and PostgreSQL like every other command: real deployments when
// DATABASE_URL and TEMPORAL_ADDRESS are set, the embedded stack otherwise.
import { loadSlackConfig, createSlackApp } from './lib/slack-app';
import { openSession } from './lib/session';

export async function runSlackApp(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<void> {
  const config = loadSlackConfig(); // fail on a bad environment before connecting anywhere
  const session = await openSession({ start: true, log });
  const slack = createSlackApp({ client: session.client, db: session.db, config, log });
  await slack.start(config.port);
  log(
    `twice slack: listening on :${slack.port()}/slack/events; ${config.allowedUsers.size} user(s) may start, cancel and change schedules` +
      (config.channel ? `; nightly summaries go to ${config.channel}` : ''),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log('twice slack: stopping (sweeps keep running)');
  await slack.stop();
  await session.close();
}
