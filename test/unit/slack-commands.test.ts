// The /twice grammar: what each command parses to, which need the allow-list, and the message a
// malformed one gets (naming the argument and the value).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandError, isWrite, parseCommand } from '../../workers/lib/slack-commands';

describe('/twice command grammar', () => {
  it('parses every verb', () => {
    assert.deepEqual(parseCommand(''), { verb: 'help' });
    assert.deepEqual(parseCommand('  run   nightly '), { verb: 'run', spec: 'nightly' });
    assert.deepEqual(parseCommand('status'), { verb: 'status', sweep: 'latest' });
    assert.deepEqual(parseCommand('STATUS default-20261128-020000-ab12'), { verb: 'status', sweep: 'default-20261128-020000-ab12' });
    assert.deepEqual(parseCommand('cancel s1'), { verb: 'cancel', sweep: 's1' });
    assert.deepEqual(parseCommand('rerun s1 abcdef12'), { verb: 'rerun', sweep: 's1', cell: 'abcdef12' });
    assert.deepEqual(parseCommand('report'), { verb: 'report', sweep: 'latest' });
    assert.deepEqual(parseCommand('schedules'), { verb: 'schedules' });
    assert.deepEqual(parseCommand('schedule Pause nightly'), { verb: 'schedule', action: 'pause', id: 'nightly' });
  });

  it('only run, cancel, rerun and schedule changes need the allow-list', () => {
    const writes = ['run a', 'cancel s', 'rerun s abcdef', 'schedule trigger n'];
    const reads = ['status', 'report', 'schedules', 'help'];
    for (const c of writes) assert.equal(isWrite(parseCommand(c)), true, c);
    for (const c of reads) assert.equal(isWrite(parseCommand(c)), false, c);
  });

  it('refuses malformed commands, naming what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['run', /missing spec name|takes 1 argument/],
      ['run Nightly', /spec name "Nightly" is not valid/],
      ['run a/b', /spec name "a\/b" is not valid/],
      ['cancel', /`cancel` takes 1 argument\(s\), got 0/],
      ['status a b', /`status` takes 0 to 1 argument\(s\), got 2/],
      ['rerun s1 12', /cell key prefix "12" is not valid: at least 6 hex digits/],
      ['schedule pause', /`schedule` takes 2 argument\(s\), got 1/],
      ['schedule delete nightly', /takes pause, unpause or trigger, got "delete"/],
      ['schedule pause Bad_Id', /schedule id "Bad_Id" is not valid/],
      ['status <script>', /sweep id "<script>" is not valid/],
      ['launch x', /unknown command "launch"/],
    ];
    for (const [text, message] of cases)
      assert.throws(
        () => parseCommand(text),
        (e: unknown) => e instanceof CommandError && message.test(e.message),
        text,
      );
  });
});
