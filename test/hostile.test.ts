/**
 * The real CLI (`node bin/rootprobe.js`) against a table of hostile and malformed inputs: every
 * command and flag given a wrong value, every kernel spec form broken, files of the wrong kind
 * (folders, /proc, truncated kernels, junk initramfs images, broken scenario files), bad
 * environment values. Each must be exit 2 with a message and no "internal error" or stack
 * trace, before anything boots (no QEMU is started: it would need a TMPDIR folder, and the
 * CLI's TMPDIR is checked empty afterwards), and must leave nothing in TMPDIR or among the
 * cache's temporary names. The count of cases is in the README's reliability section.
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli, run, ROOT } from './support/cli.ts';
import { TEST_KERNEL } from './support/kernel.ts';

export interface HostileCase {
  title: string;
  args: string[];
  /** What the message must say (the path, the flag, the reason). */
  says: RegExp;
  env?: Record<string, string>;
  /** Exit status other than 2 (e.g. `--help` is 0). */
  code?: number;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory() && !/^(kernels|images|probe|programs|apt)$/.test(e.name)) out.push(...(await walk(p)));
    else if (e.isDirectory()) out.push(...(await fs.readdir(p).catch(() => [] as string[])).map((n) => path.join(p, n)));
  }
  return out;
}

describe('CLI: hostile and malformed input is exit 2, never an internal error, and leaves nothing', function () {
  this.timeout(600_000);
  let dir: string;
  let tmp: string;
  let cache: string;
  const f = (name: string): string => path.join(dir, name);

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hostile-'));
    tmp = f('tmp');
    cache = f('cache');
    await fs.mkdir(tmp);
    await fs.mkdir(f('adir'));
    await fs.writeFile(f('afile'), 'just text\n');
    await fs.writeFile(f('empty'), '');
    await fs.writeFile(f('junk.img'), Buffer.alloc(4096, 0x5a));
    await fs.writeFile(f('not.xml'), '<<<not xml');
    await fs.writeFile(f('init'), '#!/bin/sh\n');
    await run('sh', ['-c', 'echo init | cpio --quiet -o -H newc > tiny.cpio'], { cwd: dir });
    await fs.mkdir(f('helpers-only'));
    await fs.writeFile(f('helpers-only/package.json'), '{"type":"module"}');
    await fs.writeFile(f('helpers-only/util.ts'), 'export const x = 1;\n');
    const k = await fs.readFile(TEST_KERNEL);
    await fs.writeFile(f('half.bzImage'), k.subarray(0, k.length >> 1));
    await fs.writeFile(f('header-only.bzImage'), k.subarray(0, 0x1000));
    await fs.writeFile(f('empty.config'), '# nothing\n');
    await fs.writeFile(f('gzip-junk.img'), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4]));
    await fs.mkdir(f('bad-scenarios/syntax'), { recursive: true });
    await fs.writeFile(f('bad-scenarios/package.json'), '{"type":"module"}');
    await fs.writeFile(f('bad-scenarios/syntax/scenario.ts'), 'export default {{{ not typescript');
    await fs.mkdir(f('bad-scenarios2/noexport'), { recursive: true });
    await fs.writeFile(f('bad-scenarios2/package.json'), '{"type":"module"}');
    await fs.writeFile(f('bad-scenarios2/noexport/scenario.ts'), 'export const x = 1;\n');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const fixtures = path.join(ROOT, 'test/fixtures/scenarios');
  const K = (): string => `file:${TEST_KERNEL}`;
  const cases = (): HostileCase[] => [
    // commands and usage
    { title: 'an unknown command', args: ['frobnicate'], says: /unknown command 'frobnicate'/ },
    { title: 'no command at all', args: [], says: /usage:/ },
    { title: 'an unknown flag', args: ['run', '--frobnicate'], says: /--frobnicate/ },
    { title: 'a flag without its value', args: ['run', '--json'], says: /--json/ },
    { title: 'a boolean flag given a value', args: ['run', '--keep=yes'], says: /--keep/ },
    // numbers
    { title: '--jobs 0', args: ['run', '--jobs', '0'], says: /--jobs takes a whole number of at least 1/ },
    { title: '--jobs -3', args: ['run', '--jobs=-3'], says: /--jobs/ },
    { title: '--jobs abc', args: ['run', '--jobs', 'abc'], says: /--jobs .*'abc'/ },
    { title: '--jobs 1.5', args: ['run', '--jobs', '1.5'], says: /--jobs/ },
    { title: '--jobs 1e9999', args: ['run', '--jobs', '1e9999'], says: /--jobs/ },
    { title: '--retries -1', args: ['run', '--retries=-1'], says: /--retries/ },
    { title: '--retries x', args: ['run', '--retries', 'x'], says: /--retries/ },
    { title: '--shard 0/2', args: ['run', '--shard', '0/2'], says: /--shard takes i\/n/ },
    { title: '--shard 3/2', args: ['run', '--shard', '3/2'], says: /--shard/ },
    { title: '--shard a/b', args: ['run', '--shard', 'a/b'], says: /--shard/ },
    // scenarios
    { title: 'an unknown scenario', args: ['run', 'no_such_scenario'], says: /unknown scenario: no_such_scenario. Known: .*switch_root/ },
    { title: 'scenarios and --all', args: ['run', 'switch_root', '--all'], says: /not both/ },
    { title: '--scenarios naming nothing', args: ['run', '--scenarios', f('nothing-here')], says: /nothing-here/ },
    { title: '--scenarios naming a file', args: ['run', '--scenarios', f('afile')], says: /afile/ },
    { title: '--scenarios with a syntax error', args: ['run', '--scenarios', f('bad-scenarios')], says: /syntax\/scenario\.ts/ },
    {
      title: '--scenarios whose file exports no scenario',
      args: ['run', '--scenarios', f('bad-scenarios2')],
      says: /noexport\/scenario\.ts/,
    },
    {
      title: '--scenarios holding no scenario at all',
      args: ['run', '--scenarios', f('helpers-only')],
      says: /helpers-only holds no scenario/,
    },
    {
      title: '--scenarios with two of one name',
      args: ['run', '--scenarios', path.join(fixtures, 'invalid-dup')],
      says: /scenario name 'invalid-same-name' is defined twice: in .*one\/scenario\.ts and in .*two\/scenario\.ts/,
    },
    {
      title: 'a scenario asserting an undeclared stage',
      args: ['run', '--scenarios', path.join(fixtures, 'invalid/undeclared-stage')],
      says: /scenario\.ts:\d+/,
    },
    { title: 'list --scenarios naming nothing', args: ['list', '--scenarios', f('nothing-here')], says: /nothing-here/ },
    // kernel specs
    { title: 'an unknown kernel form', args: ['run', '--kernel', 'nosuch'], says: /kernel "nosuch"/ },
    { title: 'an unknown Debian suite', args: ['run', '--kernel', 'debian/potato'], says: /unknown Debian suite "potato"/ },
    {
      title: 'a misspelt Debian suite',
      args: ['run', '--kernel', 'debian/bookwrm'],
      says: /unknown Debian suite "bookwrm" \(did you mean bookworm\?\)/,
    },
    { title: 'a misspelt scenario', args: ['run', 'swich_root'], says: /unknown scenario: swich_root \(did you mean switch_root\?\)/ },
    { title: 'a Debian flavour with bad characters', args: ['run', '--kernel', 'debian/bookworm:BAD!'], says: /debian\/bookworm:BAD!/ },
    { title: 'an unknown recipe', args: ['run', '--kernel', 'build/nosuch'], says: /build\/nosuch/ },
    { title: 'file: with no path', args: ['run', '--kernel', 'file:'], says: /file:/ },
    { title: 'file: a missing file', args: ['run', '--kernel', `file:${f('missing')}`], says: /does not exist/ },
    { title: 'file: a folder', args: ['run', '--kernel', `file:${f('adir')}`], says: /is not a file/ },
    { title: 'file: a text file', args: ['run', '--kernel', `file:${f('afile')}`], says: /is not a bzImage/ },
    { title: 'file: half a bzImage', args: ['run', '--kernel', `file:${f('half.bzImage')}`], says: /half\.bzImage: it is truncated/ },
    { title: 'file: a bzImage header alone', args: ['run', '--kernel', `file:${f('header-only.bzImage')}`], says: /it is truncated/ },
    { title: 'file: in /proc', args: ['run', '--kernel', 'file:/proc/self/status'], says: /not a bzImage|is not a file/ },
    {
      title: 'file: modules= a missing folder',
      args: ['run', '--kernel', `${K()},modules=${f('missing')}`],
      says: /modules=.*is not a folder/,
    },
    { title: 'file: config= a folder', args: ['run', '--kernel', `${K()},config=${f('adir')}`], says: /config=.*is not a file/ },
    { title: 'file: an unknown option', args: ['run', '--kernel', `${K()},colour=blue`], says: /colour/ },
    {
      title: 'file: a .config without what the scenario needs',
      args: ['run', 'switch_root', '--kernel', `${K()},config=${f('empty.config')}`],
      says: /CONFIG_BLK_DEV_INITRD/,
    },
    // output paths
    { title: '--json naming a folder', args: ['run', '--json', f('adir')], says: /--json .*adir: it is a folder/ },
    { title: '--junit under a file', args: ['run', '--junit', f('afile/x.xml')], says: /--junit/ },
    { title: '--tap in /proc', args: ['run', '--tap', '/proc/self/x.tap'], says: /\/proc is a kernel file system/ },
    { title: '--evidence in /sys', args: ['run', '--evidence', '/sys/x.md'], says: /\/sys is a kernel file system/ },
    { title: '--artifacts naming a file', args: ['run', '--artifacts', f('afile')], says: /--artifacts .*afile: it is a file/ },
    { title: '--json and --tap on one path', args: ['run', '--json', f('r'), '--tap', f('r')], says: /the same path as --json/ },
    // environment
    {
      title: 'ROOTPROBE_TIMEOUT_FACTOR=abc',
      args: ['run', 'switch_root', '--kernel', K()],
      env: { ROOTPROBE_TIMEOUT_FACTOR: 'abc' },
      says: /ROOTPROBE_TIMEOUT_FACTOR/,
    },
    {
      title: 'ROOTPROBE_TIMEOUT_FACTOR=-1',
      args: ['run', 'switch_root', '--kernel', K()],
      env: { ROOTPROBE_TIMEOUT_FACTOR: '-1' },
      says: /ROOTPROBE_TIMEOUT_FACTOR/,
    },
    // diff
    { title: 'diff with one kernel', args: ['diff', '--kernel', 'debian/bookworm'], says: /exactly two --kernel/ },
    { title: 'diff with a bad kernel', args: ['diff', '--kernel', 'debian/bookworm', '--kernel', 'nope'], says: /kernel "nope"/ },
    {
      title: 'diff --json naming a folder',
      args: ['diff', '--kernel', K(), '--kernel', 'debian/bookworm', '--json', f('adir')],
      says: /it is a folder/,
    },
    // shell, build
    { title: 'shell without a scenario', args: ['shell'], says: /shell/ },
    { title: 'shell with an unknown scenario', args: ['shell', 'nosuch'], says: /unknown scenario/ },
    {
      title: 'shell with an unknown stage',
      args: ['shell', 'switch_root', '--stage', 'nosuchstage', '--kernel', K()],
      says: /nosuchstage/,
    },
    { title: 'build without --out', args: ['build', 'switch_root'], says: /--out/ },
    { title: 'build of an unknown scenario', args: ['build', 'nosuch', '--out', f('out')], says: /unknown scenario/ },
    // junit-merge
    { title: 'junit-merge with no inputs', args: ['junit-merge', f('m.xml')], says: /usage: rootprobe junit-merge/ },
    { title: 'junit-merge of a missing report', args: ['junit-merge', f('m.xml'), f('missing.xml')], says: /cannot read JUnit report/ },
    { title: 'junit-merge of a file that is not XML', args: ['junit-merge', f('m.xml'), f('not.xml')], says: /not\.xml/ },
    { title: 'junit-merge into a folder', args: ['junit-merge', f('adir'), f('not.xml')], says: /it is a folder/ },
    // run external
    { title: 'external without --initramfs', args: ['run', 'external', '--kernel', K()], says: /needs --initramfs/ },
    { title: 'external without --kernel', args: ['run', 'external', '--initramfs', f('junk.img')], says: /needs --kernel/ },
    { title: 'external with a scenario name', args: ['run', 'external', 'switch_root'], says: /no scenario names|takes no argument/ },
    {
      title: 'external --initramfs missing',
      args: ['run', 'external', '--initramfs', f('missing'), '--kernel', K()],
      says: /missing is not a file/,
    },
    {
      title: 'external --initramfs a folder',
      args: ['run', 'external', '--initramfs', f('adir'), '--kernel', K()],
      says: /adir is not a file/,
    },
    {
      title: 'external --disk missing',
      args: ['run', 'external', '--initramfs', f('junk.img'), '--disk', f('nodisk'), '--kernel', K()],
      says: /nodisk is not a file/,
    },
    {
      title: 'external --end bogus',
      args: ['run', 'external', '--initramfs', f('junk.img'), '--kernel', K(), '--end', 'bogus'],
      says: /--end is poweroff or none/,
    },
    {
      title: 'external --timeout -5',
      args: ['run', 'external', '--initramfs', f('junk.img'), '--kernel', K(), '--timeout=-5'],
      says: /--timeout takes a positive number/,
    },
    {
      title: 'external --memory abc',
      args: ['run', 'external', '--initramfs', f('junk.img'), '--kernel', K(), '--memory', 'abc'],
      says: /--memory takes a positive number/,
    },
    {
      title: 'external with a truncated kernel',
      args: ['run', 'external', '--initramfs', f('tiny.cpio'), '--kernel', `file:${f('half.bzImage')}`],
      says: /it is truncated/,
    },
    {
      title: 'external --json in /proc',
      args: ['run', 'external', '--initramfs', f('junk.img'), '--kernel', K(), '--json', '/proc/1/x.json'],
      says: /\/proc is a kernel file system/,
    },
    {
      title: 'external with a junk initramfs',
      args: ['run', 'external', '--initramfs', f('junk.img'), '--kernel', K()],
      says: /junk\.img/,
    },
    { title: 'external with an empty initramfs', args: ['run', 'external', '--initramfs', f('empty'), '--kernel', K()], says: /empty/ },
    {
      title: 'external with a broken gzip initramfs',
      args: ['run', 'external', '--initramfs', f('gzip-junk.img'), '--kernel', K()],
      says: /gzip-junk\.img/,
    },
    // doctor
    { title: 'doctor with an unknown flag', args: ['doctor', '--frobnicate'], says: /--frobnicate/ },
  ];

  it('every case: exit 2, a message naming the input, no internal error or stack trace, nothing left behind', async () => {
    const failures: string[] = [];
    const list = cases();
    for (const c of list) {
      const r = await cli(c.args, { cwd: dir, env: { TMPDIR: tmp, ROOTPROBE_CACHE: cache, ...c.env } });
      const text = `${r.stdout}${r.stderr}`;
      const problems: string[] = [];
      if (r.code !== (c.code ?? 2)) problems.push(`exit ${r.code}`);
      if (/internal error/.test(text)) problems.push('internal error');
      if (/\n\s+at .+(\.ts|\.js|\.mjs):\d+/.test(text) || /\n\s+at (async )?[\w.<>]+ \(/.test(text)) problems.push('a stack trace');
      if (!c.says.test(text)) problems.push(`message does not match ${c.says}`);
      // tsx keeps its compile cache in TMPDIR (tsx-<uid>): not rootprobe's, and kept between cases.
      const leftInTmp = (await fs.readdir(tmp)).filter((n) => !/^tsx-\d+$/.test(n));
      if (leftInTmp.length) problems.push(`left in TMPDIR: ${leftInTmp.join(', ')}`);
      for (const n of leftInTmp) await fs.rm(path.join(tmp, n), { recursive: true, force: true });
      const temps = (await walk(cache)).filter((p) => /\/(\.tmp-[^/]*|download-[^/]*|[^/]*\.lock|[^/]*\.\d+\.tmp)$/.test(p));
      if (temps.length) problems.push(`cache temporaries left: ${temps.join(', ')}`);
      if (problems.length)
        failures.push(
          `${c.title} (rootprobe ${c.args.join(' ')}): ${problems.join('; ')}\n    ${text.trim().split('\n').slice(0, 6).join('\n    ')}`,
        );
    }
    expect(list.length).to.be.at.least(40);
    expect(failures, `${failures.length} of ${list.length} cases failed:\n${failures.join('\n')}`).to.deep.equal([]);
  });
});
