/**
 * Command assertions (subject: a Stage; the commands a guest script ran with `probe STAGE -c NAME 'CMD'`):
 *
 *   expect(stage).to.have.command('pivot')            the scenario ran it; the subject becomes {output, status}
 *     .that.failed / .that.succeeded                  non-zero / zero exit status
 *     .with.output(/Invalid argument/)                RegExp, or a string the output contains
 *
 * Failure messages show the output, whole.
 */
import { Stage, type CommandResult } from '../readback/snapshot.ts';
import { describeSubject, indent, isCommand, matches, show, showExpected, type Ctx, type Helpers } from './common.ts';

const COMMAND_FLAG = 'rootprobe.command';

export function addCommandAssertions(h: Helpers): void {
  const { Assertion } = h.chai;

  const commandName = (ctx: Ctx): string => {
    const c = h.utils.flag(ctx, COMMAND_FLAG) as { name: string; stage: string } | undefined;
    return c ? `command ${show(c.name)} in stage ${show(c.stage)}` : 'the command';
  };

  const outputBlock = (c: CommandResult): string =>
    c.output === '' ? '\n(no output)' : `\noutput:\n${indent(c.output.replace(/\n$/, ''))}`;

  const requireCommand = (ctx: Ctx, what: string): CommandResult => {
    const s = h.subject(ctx);
    if (!isCommand(s)) {
      h.usage(
        ctx,
        `${what}: the subject is ${describeSubject(s)}, not a command result; ` + `start with expect(stage).to.have.command(name)`,
      );
    }
    return s as CommandResult;
  };

  Assertion.addMethod('command', function (this: Ctx, name: string) {
    const s = h.subject(this);
    if (!(s instanceof Stage)) h.usage(this, `command(${show(name)}): the subject is ${describeSubject(s)}, not a Stage`);
    const stage = s as Stage;
    const c = stage.command(name);
    const known = Object.keys(stage.commands);
    this.assert(
      c !== undefined,
      `expected stage ${show(stage.name)} to have run command ${show(name)}, but it did not; ` +
        `commands it ran: ${known.length ? known.map((k) => show(k)).join(', ') : 'none'}`,
      `expected stage ${show(stage.name)} not to have run command ${show(name)}, but it did`,
    );
    if (c && !h.negated(this)) {
      h.utils.flag(this, 'object', c);
      h.utils.flag(this, COMMAND_FLAG, { name, stage: stage.name });
    }
  });

  const status = (prop: 'failed' | 'succeeded'): void => {
    Assertion.addProperty(prop, function (this: Ctx) {
      const c = requireCommand(this, prop);
      const ok = prop === 'failed' ? c.status !== 0 : c.status === 0;
      const want = prop === 'failed' ? 'to fail (non-zero exit status)' : 'to succeed (exit status 0)';
      const notWant = prop === 'failed' ? 'not to fail' : 'not to succeed';
      this.assert(
        ok,
        `expected ${commandName(this)} ${want}, but it exited ${c.status}${outputBlock(c)}`,
        `expected ${commandName(this)} ${notWant}, but it exited ${c.status}${outputBlock(c)}`,
      );
    });
  };
  status('failed');
  status('succeeded');

  Assertion.addMethod('output', function (this: Ctx, expected: string | RegExp) {
    const c = requireCommand(this, `output(${showExpected(expected)})`);
    const how = expected instanceof RegExp ? 'matching' : 'containing';
    this.assert(
      matches(c.output, expected, 'contains'),
      `expected ${commandName(this)} to have output ${how} ${showExpected(expected)}, but it does not` +
        ` (exit status ${c.status})${outputBlock(c)}`,
      `expected ${commandName(this)} not to have output ${how} ${showExpected(expected)}, but it does` +
        ` (exit status ${c.status})${outputBlock(c)}`,
    );
  });
}
