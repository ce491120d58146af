// Nightly summaries and regression alerts to Slack, sent by the orchestrator worker's nightly
// activity. Configured by the same variables as the Slack app (SLACK_BOT_TOKEN and
// TWICE_SLACK_CHANNEL); with either unset, nights are summarised but announced nowhere.
import { WebClient, type WebClientOptions } from '@slack/web-api';
import { type NightlyNotifier } from '../../activities/nightly';
import { nightlySummaryMessage } from './slack-messages';

export function slackNightlyNotifier(web: WebClient, channel: string, webUrl: string | null): NightlyNotifier {
  return async (scheduleId, summary) => {
    await web.chat.postMessage({ channel, ...nightlySummaryMessage(scheduleId, summary, webUrl) });
  };
}

export function nightlyNotifierFromEnv(env: NodeJS.ProcessEnv = process.env, clientOptions?: WebClientOptions): NightlyNotifier | undefined {
  const token = env.SLACK_BOT_TOKEN;
  const channel = env.TWICE_SLACK_CHANNEL;
  if (!token || !channel) return undefined;
  return slackNightlyNotifier(new WebClient(token, clientOptions), channel, env.TWICE_WEB_URL ?? null);
}
