/**
 * `rootprobe new <name> [--disk] [--dir DIR]`: writes a scenario folder that passes as written,
 * a start to edit rather than an example to read:
 *
 *   DIR/<name>/scenario.ts       the definition: features, initramfs, (disk), stages, check
 *   DIR/<name>/init.sh           the initramfs's /init: mounts, probes, (switch_root)
 *   DIR/<name>/rootinit.sh       --disk: the root disk's /sbin/init (a script: PID 1's exe is its interpreter)
 *   DIR/<name>/<name>.test.ts    a mocha test that boots it with boot() on the default kernel (DEFAULTS.kernel)
 *   DIR/package.json             where missing: "type": "module", the test tools, `npm test`, `npm run typecheck`
 *   DIR/tsconfig.json            where missing: `npx tsc --noEmit` checks the scenario against rootprobe's types
 *   DIR/.mocharc.json            where missing: mocha loads TypeScript through tsx
 *
 * Nothing is overwritten: an existing <name> folder is an error (exit 2), an existing
 * package.json, tsconfig.json or .mocharc.json is left as it is.
 */
import { createRequire } from 'node:module';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { COMMANDS, parseCommand } from './options.ts';
import { DEFAULTS } from '../plan/defaults.ts';

export const SCENARIO_NAME = /^[a-z0-9][a-z0-9_.-]*$/;

function initramfsScenario(name: string): string {
  return `import { scenario } from 'rootprobe';

export default scenario({
  name: '${name}',
  description: 'The initramfs mounts a tmpfs on /scratch and starts a process in it; ' +
    'before, / is rootfs and /scratch is no mount; after, /scratch is the tmpfs and the process works in it.',
  features: ['initrd', 'proc', 'devtmpfs', 'tmpfs', 'serial'],
  initramfs(t, ctx) {
    t.script('/init', ctx.here('init.sh')); // busybox, modules and the probe are added for you
  },
  stages: ['before', 'after'], // what init.sh probes, in order (\`done\` comes last)
  check({ stage, expect, evidence }) {
    const before = stage('before');
    const after = stage('after');
    expect(before).to.have.mount('/').of.type('rootfs');
    expect(before).to.not.have.mount('/scratch');

    expect(after).to.have.mount('/scratch').of.type('tmpfs').from('scratch').with.option('rw');
    expect(after).to.have.processNamed('sleep').with.cwd('/scratch');
    expect(after).to.have.command('df').that.succeeded.with.output(/scratch/);
    expect(after.vars.scratch_size).to.equal('1m');
    evidence(\`after: /scratch is mount \${after.mountAt('/scratch')!.mountId}\`);
  },
}, import.meta); // import.meta: this file's folder holds the guest scripts (ctx.here)
`;
}

const INITRAMFS_INIT = `#!/bin/sh
# The initramfs's /init (busybox sh). Each \`probe STAGE\` sends the mount tree and every
# process to the host; -v NAME=VALUE, -f PATH and -c NAME 'COMMAND' send more (stage.vars,
# stage.file(PATH), stage.command(NAME)).
. /.rootprobe/lib.sh              # probe, rp_finish, rp_fail, rp_load_modules, rp_wait_dev
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
probe before
mkdir -p /scratch
mount -t tmpfs -o size=1m scratch /scratch || rp_fail "mount tmpfs on /scratch failed"
(cd /scratch && exec sleep 1000) &
probe after -v scratch_size=1m -c df 'df /scratch'
rp_finish                         # probes \`done\` and powers off
`;

function diskScenario(name: string): string {
  return `import { scenario } from 'rootprobe';

export default scenario({
  name: '${name}',
  description: 'The initramfs mounts an ext4 root disk and busybox switch_root moves it over rootfs; ' +
    "after the switch / is the disk, mounted atop rootfs, and PID 1 runs the disk's /sbin/init.",
  features: ['initrd', 'proc', 'devtmpfs', 'tmpfs', 'serial', 'virtio-blk', 'ext4'],
  initramfs(t, ctx) {
    t.script('/init', ctx.here('init.sh'));
  },
  disks: [
    {
      name: 'root', // the first disk: /dev/vda
      fs: 'ext4',
      sizeMiB: 16,
      // A disk holds only what content() puts there, plus /.rootprobe (the probe, a static
      // busybox and lib.sh): no /bin/sh, no /dev, no libc.
      content(t, ctx) {
        t.dir('/proc');
        t.dir('/dev');
        t.script('/sbin/init', ctx.here('rootinit.sh'));
        t.file('/etc/hostname', '${name}\\n');
      },
    },
  ],
  stages: ['initramfs', 'realroot'],
  check({ stage, expect, evidence }) {
    const before = stage('initramfs');
    const after = stage('realroot');
    expect(before).to.have.mount('/').of.type('rootfs');

    // seed 003: the real root is mounted atop rootfs: its parent is the rootfs mount of the
    // initramfs (no longer in this view, which starts at the new /)
    expect(after).to.have.mount('/').of.type('ext4').from('/dev/vda').with.option('rw');
    expect(after.mountAt('/')!.parentId).to.equal(before.mountAt('/')!.mountId);
    // /proc was moved, not mounted again: the same mount, moved
    expect(after).to.have.mount('/proc').that.movedFrom(before, '/proc');
    // a script init runs in its interpreter: PID 1's exe is the disk's busybox
    expect(after.process(1)).to.have.exe('/.rootprobe/busybox');
    expect(after.file('/etc/hostname')).to.equal('${name}\\n');
    evidence(\`realroot: / is mount \${after.mountAt('/')!.mountId}, atop mount \${after.mountAt('/')!.parentId}\`);
  },
}, import.meta); // import.meta: this file's folder holds the guest scripts (ctx.here)
`;
}

const DISK_INIT = `#!/bin/sh
# The initramfs's /init: mount the API filesystems, wait for the disk, mount it, move /proc and
# /dev over and let busybox switch_root delete the initramfs and exec the disk's /sbin/init.
. /.rootprobe/lib.sh
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
rp_load_modules                   # the modules of modular features (virtio-blk, ext4), if any
rp_wait_dev /dev/vda
probe initramfs
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || rp_fail "mount /dev/vda failed"
mount --move /proc /newroot/proc
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
`;

const DISK_ROOT_INIT = `#!/.rootprobe/busybox sh
# The root disk's /sbin/init, run by the toolkit's static busybox (the disk has no /bin/sh).
. /.rootprobe/lib.sh
probe realroot -f /etc/hostname
rp_finish
`;

function mochaTest(name: string, disk: boolean): string {
  const stages = disk ? `['initramfs', 'realroot', 'done']` : `['before', 'after', 'done']`;
  return `import { expect } from 'chai';
import { boot } from 'rootprobe';
import sc from './scenario.ts';

describe('${name}', function () {
  this.timeout(300_000); // the first run downloads the kernel; a boot takes seconds

  it('passes on ${DEFAULTS.kernel}', async () => {
    const run = await boot(sc, { kernel: '${DEFAULTS.kernel}' });
    expect(run.outcome, run.message).to.equal('passed');
    expect(run.stagesReported).to.deep.equal(${stages});
  });
});
`;
}

function packageJson(dir: string): string {
  const own = createRequire(import.meta.url)('rootprobe/package.json') as {
    version: string;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const dev = { ...own.dependencies, ...own.devDependencies };
  const pick = (names: string[]) => Object.fromEntries(names.filter((n) => dev[n]).map((n) => [n, dev[n]]));
  return (
    JSON.stringify(
      {
        name:
          path
            .basename(path.resolve(dir))
            .toLowerCase()
            .replace(/[^a-z0-9._-]/g, '-') || 'scenarios',
        private: true,
        type: 'module',
        scripts: {
          test: "mocha '*/*.test.ts'",
          typecheck: 'tsc --noEmit',
          rootprobe: 'rootprobe run --scenarios .',
        },
        devDependencies: {
          rootprobe: `^${own.version}`,
          ...pick(['mocha', 'chai', 'tsx', 'typescript', '@types/node', '@types/mocha', '@types/chai']),
        },
      },
      null,
      2,
    ) + '\n'
  );
}

/** With this, `npx tsc --noEmit` checks the scenarios against rootprobe's own (TypeScript) types. */
export const TSCONFIG = `${JSON.stringify(
  {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      skipLibCheck: true,
      types: ['node', 'mocha'],
    },
    include: ['**/*.ts', '**/*.mts'],
    exclude: ['node_modules'],
  },
  null,
  2,
)}\n`;

const MOCHARC = `${JSON.stringify({ 'node-option': ['import=tsx'], timeout: 600000 }, null, 2)}\n`;

export interface NewScenario {
  /** The scenario folder. */
  dir: string;
  /** Every file written, in order. */
  written: string[];
  /** Files that were there already and were left alone. */
  kept: string[];
}

/** Writes the scenario folder `name` under `parent` (see the file comment). */
export async function newScenario(name: string, parent: string, opts: { disk?: boolean } = {}): Promise<NewScenario> {
  if (!SCENARIO_NAME.test(name)) {
    throw new UsageError(`scenario name '${name}' must be lowercase letters, digits, _ . - (starting with a letter or digit)`);
  }
  const dir = path.resolve(parent, name);
  if (
    await fs.stat(dir).then(
      () => true,
      () => false,
    )
  )
    throw new UsageError(`${dir} exists already; pick another name or --dir`);
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  const kept: string[] = [];
  const write = async (file: string, text: string, mode = 0o644): Promise<void> => {
    await fs.writeFile(file, text, { mode, flag: 'wx' });
    written.push(file);
  };
  await write(path.join(dir, 'scenario.ts'), opts.disk ? diskScenario(name) : initramfsScenario(name));
  await write(path.join(dir, 'init.sh'), opts.disk ? DISK_INIT : INITRAMFS_INIT, 0o755);
  if (opts.disk) await write(path.join(dir, 'rootinit.sh'), DISK_ROOT_INIT, 0o755);
  await write(path.join(dir, `${name}.test.ts`), mochaTest(name, Boolean(opts.disk)));
  const top = path.resolve(parent);
  for (const [file, text] of [
    ['package.json', packageJson(top)],
    ['tsconfig.json', TSCONFIG],
    ['.mocharc.json', MOCHARC],
  ] as const) {
    const p = path.join(top, file);
    if (
      await fs.stat(p).then(
        () => true,
        () => false,
      )
    )
      kept.push(p);
    else await write(p, text);
  }
  return { dir, written, kept };
}

export async function cmdNew(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.new, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('usage: rootprobe new <name> [--disk] [--dir DIR] (see: rootprobe new --help)');
  const parent = values.dir ?? '.';
  const r = await newScenario(positionals[0], parent, { disk: values.disk });
  const rel = (p: string) => path.relative(process.cwd(), p) || '.';
  const lines = [`wrote ${rel(r.dir)}/:`, ...r.written.map((f) => `  ${rel(f)}`)];
  for (const k of r.kept) lines.push(`  kept ${rel(k)} as it was`);
  const pkg = r.kept.find((k) => k.endsWith('package.json'));
  if (pkg) {
    const type = (JSON.parse(await fs.readFile(pkg, 'utf8')) as { type?: string }).type;
    if (type !== 'module') lines.push(`  note: ${rel(pkg)} has no "type": "module"; add it (the scenario files are ES modules)`);
  }
  lines.push(
    '',
    'next:',
    `  ${r.written.some((f) => f.endsWith('package.json')) ? `${parent === '.' ? '' : `cd ${rel(path.resolve(parent))} && `}npm install   # rootprobe and the test tools\n  ` : ''}` +
      `npx rootprobe run ${positionals[0]} --scenarios ${rel(path.resolve(parent))}`,
    `  npx tsc --noEmit -p ${rel(path.resolve(parent))}             # type-check against rootprobe's types`,
    `  npx mocha ${rel(path.join(r.dir, `${positionals[0]}.test.ts`))}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
