/**
 * The kernel-provider registry and the architecture table: a provider added from a file of its
 * own is parsed, listed, named in the accepted forms and boots a scenario; the architecture's
 * names appear nowhere outside harness/arch/.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { acceptedForms, listKernels, parseKernelSpec, providers, registerProvider, resolveKernel } from '../kernels/index.ts';
import { UsageError } from '../harness/errors.ts';
import { ARCHES, archByName } from '../harness/arch/index.ts';
import { runMatrix } from '../harness/run/matrix.ts';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { aliasProvider } from './fixtures/kernels/provider-alias.ts';
import { COMMANDS, helpText, loadHelpContext, usageText } from '../harness/cli/options.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('kernel providers (kernels/registry.ts)', () => {
  it('the built-in providers are debian, build and file, and the forms are made from them', () => {
    expect(providers().map((p) => p.kind)).to.deep.equal(['debian', 'build', 'file', 'git']);
    expect(acceptedForms()).to.match(
      /^Accepted forms: debian\/<suite>\[:<flavour>\] .*; or build\/<recipe>.*; or file:<path-to-bzImage>.*; or git:<tree>/,
    );
  });

  it('a provider from a file of its own: parsed, listed, in the forms and the errors, resolved; removed again', async () => {
    const remove = registerProvider(aliasProvider);
    try {
      expect(() => registerProvider(aliasProvider)).to.throw(/registered already/);
      expect(parseKernelSpec('alias/stable')).to.deep.equal({ kind: 'alias', id: 'alias/stable', target: 'debian/bookworm' });
      expect(() => parseKernelSpec('alias/nope')).to.throw(UsageError, /no alias "nope".*Accepted forms: .*alias\/<name>/);
      expect(() => parseKernelSpec('bogus')).to.throw(UsageError, /alias\/<name> \(another name for a kernel/);
      expect((await listKernels()).map((k) => k.id)).to.include('alias/stable');
      const k = await resolveKernel('alias/stable');
      expect(k.id).to.equal('alias/stable');
      expect(k.release).to.match(/^6\.1\./);
    } finally {
      remove();
    }
    expect(() => parseKernelSpec('alias/stable')).to.throw(UsageError, /not a known kernel spec/);
  });

  it("an added provider's forms are in the CLI's --kernel help (made from the registry when printed); removed, they are not", async () => {
    // The registry as the help loads it (an import() of its own): mocha loads this file through
    // tsx's require hook, which makes the static imports above another instance of the module.
    const registry = await import('../kernels/registry.ts');
    const before = helpText(COMMANDS.run, await loadHelpContext());
    expect(before).not.to.include('alias/<name>');
    const remove = registry.registerProvider(aliasProvider);
    try {
      const ctx = await loadHelpContext();
      for (const spec of [COMMANDS.run, COMMANDS.shell, COMMANDS.build, COMMANDS.diff])
        expect(helpText(spec, ctx)).to.include('alias/<name>');
      expect(usageText(ctx)).to.include('alias/<name>');
    } finally {
      remove();
    }
    expect(helpText(COMMANDS.run, await loadHelpContext())).to.equal(before);
  });

  it('a scenario boots on a kernel of the added provider @boot', async function () {
    this.timeout(600_000);
    const remove = registerProvider(aliasProvider);
    try {
      const [sc] = pickScenarios(await loadScenarios([]), ['switch_root']);
      const report = await runMatrix([sc], ['alias/stable'], {
        jobs: 1,
        artifactsRoot: path.join(ROOT, 'rootprobe-artifacts/registry-test'),
        keep: false,
      });
      expect(report.runs.map((r) => [r.kernel, r.outcome, r.message])).to.deep.equal([['alias/stable', 'passed', undefined]]);
    } finally {
      remove();
    }
  });
});

/**
 * What only the architecture table may spell: QEMU binaries, machines and serial devices, GNU
 * triplets; an architecture's name as a string or as the key of a table of its own (`arm64:
 * '...'`, a comparison with `'arm64'`); its Image magic; its name for gdb and KernelCI.
 */
const ARCH_FACT = new RegExp(
  [
    /qemu-system-x86_64|ttyS[01]\b|'pc'|\bx86_64-linux-gnu\b/.source,
    /['"`](x86_64|arm64|riscv64|aarch64|riscv|x86)['"`]/.source,
    /(^|[{,]\s*)(x86_64|arm64|riscv64)\s*:\s/.source,
    /ARM\\x64|RSC\\x05|\bi386:x86-64\b|\briscv:rv64\b/.source,
  ].join('|'),
);

describe('the architecture table (harness/arch/)', () => {
  it('x86_64, arm64 and riscv64 are there; an unknown architecture is an error listing the known', () => {
    expect(Object.keys(ARCHES)).to.deep.equal(['x86_64', 'arm64', 'riscv64']);
    expect(archByName('arm64')).to.include({ qemuBinary: 'qemu-system-aarch64', machine: 'virt', console: 'ttyAMA0', debianArch: 'arm64' });
    expect(archByName('riscv64')).to.include({
      qemuBinary: 'qemu-system-riscv64',
      machine: 'virt',
      console: 'ttyS0',
      debianArch: 'riscv64',
    });
    expect(archByName('x86_64')).to.include({ qemuBinary: 'qemu-system-x86_64', machine: 'pc', console: 'ttyS0', debianArch: 'amd64' });
    expect(() => archByName('vax')).to.throw(UsageError, /unknown architecture 'vax'; known: x86_64/);
  });

  it('no code outside harness/arch/ names a QEMU binary, machine, guest serial device or another fact of an architecture', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        if (statSync(p).isDirectory()) {
          if (p !== path.join(ROOT, 'harness/arch')) walk(p);
          continue;
        }
        if (!/\.(ts|c|sh)$/.test(name)) continue;
        readFileSync(p, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            const code = line.replace(/\/\/.*$|\/\*.*?\*\/|^\s*\*.*$|^\s*#.*$/g, '');
            if (ARCH_FACT.test(code)) offenders.push(`${path.relative(ROOT, p)}:${i + 1}: ${line.trim()}`);
          });
      }
    };
    for (const d of ['harness', 'kernels', 'images', 'scenarios']) walk(path.join(ROOT, d));
    expect(offenders).to.deep.equal([]);
  });
});
