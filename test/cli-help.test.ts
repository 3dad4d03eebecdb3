/**
 * `rootprobe <command> --help` for every command: the usage and every option of the table the
 * parser reads (harness/cli/options.ts), exit 0; an unknown option is exit 2 naming the help.
 * No boot.
 */
import { expect } from 'chai';
import { COMMANDS, helpText, parseCommand, type CommandSpec } from '../harness/cli/options.ts';
import { UsageError } from '../harness/errors.ts';
import { cli } from './support/cli.ts';

const specs: CommandSpec[] = Object.values(COMMANDS);

describe('rootprobe <command> --help', () => {
  for (const spec of specs) {
    it(`${spec.name} --help prints its usage and every option of its table`, async () => {
      const r = await cli([...spec.name.split(' '), '--help']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(`${helpText(spec)}\n`);
      expect(r.stdout.split('\n')[0]).to.equal(`usage: rootprobe ${spec.name}${spec.synopsis ? ` ${spec.synopsis}` : ''}`);
      for (const [name, o] of Object.entries(spec.options)) {
        expect(r.stdout).to.include(`--${name}${o.type === 'string' ? ` ${o.arg}` : ''}`);
      }
      expect(r.stdout).to.include('-h, --help');
    });
  }

  it('the parser takes every option its help lists, and no other', () => {
    for (const spec of specs) {
      for (const [name, o] of Object.entries(spec.options)) {
        const args = o.type === 'string' ? [`--${name}`, 'x'] : [`--${name}`];
        const p = parseCommand(spec, args);
        expect((p.values as Record<string, unknown>)[name], `${spec.name} --${name}`).to.deep.equal(
          o.type === 'string' ? (o.multiple ? ['x'] : 'x') : true,
        );
      }
      expect(() => parseCommand(spec, ['--no-such-option']), spec.name).to.throw(UsageError, `(see: rootprobe ${spec.name} --help)`);
    }
  });

  it("an unknown option is exit 2 naming the command's help; `rootprobe help run` is `run --help`", async () => {
    const r = await cli(['diff', '--kernels', 'x']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.equal("rootprobe: diff: Unknown option '--kernels' (see: rootprobe diff --help)\n");
    const h = await cli(['help', 'run']);
    expect(h.code).to.equal(0);
    expect(h.stdout).to.equal(`${helpText(COMMANDS.run)}\n`);
    const top = await cli(['--help']);
    for (const spec of specs) expect(top.stdout).to.include(`rootprobe ${spec.name}`);
  });

  it('string options need a value; commands without positionals refuse them', () => {
    expect(() => parseCommand(COMMANDS.run, ['--jobs'])).to.throw(UsageError, /--jobs/);
    expect(() => parseCommand(COMMANDS.kernels, ['extra'])).to.throw(UsageError, 'kernels takes no argument (got extra)');
  });
});
