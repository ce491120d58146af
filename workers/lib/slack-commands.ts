// The `/twice` slash command's grammar. Every argument is checked here, before anything is looked
// up or started, so a malformed command costs nothing and the answer says what was wrong.
export type SlackCommand =
  | { verb: 'run'; spec: string }
  | { verb: 'status'; sweep: string }
  | { verb: 'cancel'; sweep: string }
  | { verb: 'rerun'; sweep: string; cell: string }
  | { verb: 'report'; sweep: string }
  | { verb: 'schedules' }
  | { verb: 'schedule'; action: 'pause' | 'unpause' | 'trigger'; id: string }
  | { verb: 'help' };

/** Commands that start, stop or change something: only users on the allow-list may send them. */
export const isWrite = (c: SlackCommand) => c.verb === 'run' || c.verb === 'cancel' || c.verb === 'rerun' || c.verb === 'schedule';

export const USAGE = [
  '`/twice run <spec>`: run specs/<spec>.yaml and follow it in a thread',
  '`/twice status [<sweep>|latest]`: where a sweep stands',
  '`/twice cancel <sweep>`: cancel a running sweep',
  '`/twice rerun <sweep> <cell key prefix>`: run a failed cell of a sweep again',
  '`/twice report [<sweep>|latest]`: results table, Pareto chart and dashboard link',
  '`/twice schedules`: list nightly schedules',
  '`/twice schedule pause|unpause|trigger <id>`: change a schedule',
].join('\n');

const SPEC_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const SWEEP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SCHEDULE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CELL_PREFIX = /^[0-9a-f]{6,64}$/;

export class CommandError extends Error {}

function arg(value: string | undefined, what: string, pattern: RegExp, hint: string): string {
  if (value === undefined) throw new CommandError(`missing ${what}`);
  if (!pattern.test(value)) throw new CommandError(`${what} "${value.slice(0, 80)}" is not valid: ${hint}`);
  return value;
}

function arity(words: string[], min: number, max: number, verb: string) {
  const n = words.length - 1;
  if (n < min || n > max) {
    throw new CommandError(`\`${verb}\` takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${n}`);
  }
}

/** Parses the text after `/twice`; throws CommandError naming the problem. */
export function parseCommand(text: string): SlackCommand {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const verb = words[0]?.toLowerCase();
  const sweep = (i: number) => arg(words[i] ?? 'latest', 'sweep id', SWEEP_ID, 'letters, digits, dot, dash, underscore');
  switch (verb) {
    case undefined:
    case 'help':
      return { verb: 'help' };
    case 'run':
      arity(words, 1, 1, verb);
      return { verb, spec: arg(words[1], 'spec name', SPEC_NAME, 'lowercase letters, digits, dash, underscore (a file in specs/)') };
    case 'status':
    case 'report':
      arity(words, 0, 1, verb);
      return { verb, sweep: sweep(1) };
    case 'cancel':
      arity(words, 1, 1, verb);
      return { verb, sweep: sweep(1) };
    case 'rerun':
      arity(words, 2, 2, verb);
      return { verb, sweep: sweep(1), cell: arg(words[2], 'cell key prefix', CELL_PREFIX, 'at least 6 hex digits') };
    case 'schedules':
      arity(words, 0, 0, verb);
      return { verb };
    case 'schedule': {
      arity(words, 2, 2, verb);
      const action = words[1]!.toLowerCase();
      if (action !== 'pause' && action !== 'unpause' && action !== 'trigger') {
        throw new CommandError(`\`schedule\` takes pause, unpause or trigger, got "${words[1]!.slice(0, 40)}"`);
      }
      return { verb, action, id: arg(words[2], 'schedule id', SCHEDULE_ID, 'lowercase letters, digits, dashes') };
    }
    default:
      throw new CommandError(`unknown command "${words[0]!.slice(0, 40)}"`);
  }
}
