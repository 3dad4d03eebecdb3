/**
 * `rootprobe <command> --help` for every command: the usage and every option of the table the
 * parser reads (harness/cli/options.ts), exit 0; an unknown option is exit 2 naming the help.
 * No boot.
 */
import { expect } from 'chai';
import { COMMANDS, helpText, loadHelpContext, parseOptions, type CommandSpec } from '../harness/cli/options.ts';
import { UsageError } from '../harness/errors.ts';
import { providers } from '../kernels/registry.ts';
import { BIN, cli, ROOT, run } from './support/cli.ts';

const specs: CommandSpec[] = Object.values(COMMANDS);

describe('rootprobe <command> --help', () => {
  for (const spec of specs) {
    it(`${spec.name} --help prints its usage and every option of its table`, async () => {
      const r = await cli([...spec.name.split(' '), '--help']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(`${helpText(spec, await loadHelpContext())}\n`);
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
        const p = parseOptions(spec, args);
        expect((p.values as Record<string, unknown>)[name], `${spec.name} --${name}`).to.deep.equal(
          o.type === 'string' ? (o.multiple ? ['x'] : 'x') : true,
        );
      }
      expect(() => parseOptions(spec, ['--no-such-option']), spec.name).to.throw(UsageError, `(see: rootprobe ${spec.name} --help)`);
    }
  });

  it("an unknown option is exit 2 naming the command's help; `rootprobe help run` is `run --help`", async () => {
    const r = await cli(['diff', '--kernels', 'x']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.equal("rootprobe: diff: Unknown option '--kernels' (see: rootprobe diff --help)\n");
    const h = await cli(['help', 'run']);
    expect(h.code).to.equal(0);
    expect(h.stdout).to.equal(`${helpText(COMMANDS.run, await loadHelpContext())}\n`);
    const top = await cli(['--help']);
    for (const spec of specs) expect(top.stdout).to.include(`rootprobe ${spec.name}`);
  });

  it("the --kernel help names every registered provider's forms and the default", async () => {
    for (const args of [['run', '--help'], ['shell', '--help'], ['build', '--help'], ['diff', '--help'], ['--help']]) {
      const r = await cli(args);
      expect(r.code, r.stderr).to.equal(0);
      // The help wraps at spaces; a form has none.
      const words = r.stdout.split(/\s+/);
      for (const form of providers().flatMap((p) => p.forms)) expect(words.join(' '), args.join(' ')).to.include(form);
      expect(r.stdout, args.join(' ')).to.include('debian/bookworm (default)');
    }
  });

  it('the registry is loaded only to print a help: `rootprobe list` and a usage error load no kernel provider', async () => {
    // A loader hook that names every module of the repository as it is loaded (on stderr).
    const hook = `export async function load(u, c, next) { if (u.startsWith('file:')) console.error('LOADED ' + u); return next(u, c); }`;
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
    const loaded = async (args: string[]) => {
      const r = await run(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, BIN, ...args], {
        env: { ...process.env, CI: '1' },
      });
      return r.stderr
        .split('\n')
        .filter((l) => l.startsWith(`LOADED file://${ROOT}/`) && !l.includes('/node_modules/'))
        .map((l) => l.slice(`LOADED file://${ROOT}/`.length));
    };
    const list = await loaded(['list']);
    expect(list, 'the hook saw the CLI load').to.include('harness/cli/options.ts');
    expect(list.filter((m) => m.startsWith('kernels/registry.ts') || m.startsWith('kernels/providers/'))).to.deep.equal([]);
    expect((await loaded(['run', '--no-such-option'])).filter((m) => m.startsWith('kernels/'))).to.deep.equal([]);
    expect(await loaded(['run', '--help'])).to.include('kernels/registry.ts');
  });

  it('string options need a value; commands without positionals refuse them', () => {
    expect(() => parseOptions(COMMANDS.run, ['--jobs'])).to.throw(UsageError, /--jobs/);
    expect(() => parseOptions(COMMANDS.kernels, ['extra'])).to.throw(UsageError, 'kernels takes no argument (got extra)');
  });
});
