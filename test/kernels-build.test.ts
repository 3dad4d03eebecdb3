/**
 * build/<recipe>: recipes, config fragments and cache keys (unit), and the real build of
 * nonroot-6.1 into the shared cache, booted with the nonroot_initramfs scenario (@boot: the
 * first run compiles a kernel, minutes on 2 cores; later runs find it in the cache).
 */
import { expect } from 'chai';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DefinitionError, SetupError, UsageError } from '../harness/errors.ts';
import { kbuildArchArgs } from '../kernels/kbuild.ts';
import { ARCHES } from '../harness/arch/index.ts';
import { RECIPES_DIR, droppedOptions, listRecipes, loadRecipe, parseFragment, parseRecipe, recipeKey } from '../kernels/build.ts';
import {
  FEATURES,
  KNOWN_KERNELS,
  checkFeatures,
  parseKernelConfig,
  parseKernelSpec,
  resolveKernel,
  type Feature,
  type Kernel,
} from '../kernels/index.ts';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { detectAccel } from '../harness/qemu/accel.ts';

const good = JSON.stringify({
  description: 'd',
  source: { suite: 'bookworm', package: 'linux-source-6.1' },
  fragments: ['../base.config'],
  patches: ['0001-x.patch'],
});

describe('build recipes', () => {
  it('parses a recipe, its paths relative to its folder', () => {
    const r = parseRecipe(good, 'x', '/r/x', '/r');
    expect(r.source).to.deep.equal({ suite: 'bookworm', package: 'linux-source-6.1' });
    expect(r.fragments).to.deep.equal(['/r/base.config']);
    expect(r.patches).to.deep.equal(['/r/x/0001-x.patch']);
  });

  it('rejects bad recipes, naming the field', () => {
    const bad = (j: unknown, re: RegExp): void => {
      expect(() => parseRecipe(typeof j === 'string' ? j : JSON.stringify(j), 'x', '/r/x', '/r')).to.throw(DefinitionError, re);
    };
    const base = JSON.parse(good) as Record<string, unknown>;
    bad('{', /not valid JSON/);
    bad({ ...base, extra: 1 }, /unknown field "extra"/);
    bad({ ...base, source: { suite: 'hamm', package: 'linux-source-6.1' } }, /source\.suite.*bookworm/);
    bad({ ...base, source: { suite: 'bookworm', package: 'linux-image-amd64' } }, /source\.package/);
    bad({ ...base, fragments: [] }, /"fragments" must name at least one/);
    bad({ ...base, patches: ['../../etc/passwd'] }, /outside the recipes folder/);
  });

  it('knows the shipped recipes, as kernel specs too', () => {
    expect(listRecipes()).to.include.members(['nonroot-6.1', 'stock-6.1']);
    expect(KNOWN_KERNELS).to.include.members(['build/nonroot-6.1', 'build/stock-6.1']);
    expect(parseKernelSpec('build/nonroot-6.1')).to.deep.equal({
      kind: 'build',
      id: 'build/nonroot-6.1',
      recipe: 'nonroot-6.1',
      extras: { configAdd: [], fragments: [] },
    });
    expect(parseKernelSpec('build/stock-6.1,config-add=CONFIG_LKDTM=y').id).to.equal('build/stock-6.1,config-add=CONFIG_LKDTM=y');
    expect(() => parseKernelSpec('build/stock-6.1,config-add=LKDTM')).to.throw(UsageError, /config-add=LKDTM is not CONFIG_NAME=value/);
    expect(() => parseKernelSpec('build/no-such')).to.throw(UsageError, /no recipe no-such.*Known recipes: .*nonroot-6\.1/);
    expect(() => parseKernelSpec('build/stock-6.2')).to.throw(
      UsageError,
      /no recipe stock-6\.2 in .* \(did you mean build\/stock-6\.1\?\)/,
    );
    const r = loadRecipe('nonroot-6.1');
    expect(r.patches.map((p) => path.basename(p))).to.deep.equal(['0001-init-nonroot_initramfs.patch']);
    expect(loadRecipe('stock-6.1').patches).to.deep.equal([]);
  });

  it('keys a build by source version, recipe, fragments and patches', () => {
    const r = loadRecipe('nonroot-6.1');
    const k = recipeKey(r, '6.1.176-1');
    expect(k).to.match(/^build-nonroot-6\.1-6\.1\.176-1-[0-9a-f]{16}$/);
    expect(recipeKey(r, '6.1.176-1')).to.equal(k);
    expect(recipeKey(r, '6.1.177-1')).to.not.equal(k);
    const patched = (f: string): Buffer => (f.endsWith('.patch') ? Buffer.from('other') : readFileSync(f));
    expect(recipeKey(r, '6.1.176-1', patched)).to.not.equal(k);
    const frag = (f: string): Buffer => (f.endsWith('.config') ? Buffer.from('CONFIG_X=y\n') : readFileSync(f));
    expect(recipeKey(r, '6.1.176-1', frag)).to.not.equal(k);
    const stock = loadRecipe('stock-6.1');
    expect(recipeKey(stock, '6.1.176-1')).to.not.equal(k);
  });

  it('parses fragments and names what olddefconfig dropped', () => {
    const f = parseFragment('# c\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=64\n');
    expect([...f]).to.deep.equal([
      ['CONFIG_A', 'y'],
      ['CONFIG_B', 'n'],
      ['CONFIG_C', '"x y"'],
      ['CONFIG_D', '64'],
    ]);
    expect(() => parseFragment('CONFIG_A y\n', 'f.config')).to.throw(DefinitionError, /f\.config line 1/);
    const config = parseKernelConfig('CONFIG_A=y\nCONFIG_B=y\nCONFIG_C="x y"\n# CONFIG_E is not set\n');
    const dropped = droppedOptions(
      [{ name: 'base.config', text: 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=64\nCONFIG_E=y\n' }],
      config,
    );
    expect(dropped).to.deep.equal([
      'CONFIG_B=n (from base.config) became CONFIG_B=y',
      'CONFIG_D=64 (from base.config) became not set',
      'CONFIG_E=y (from base.config) became not set',
    ]);
    // a later fragment overrides an earlier one
    expect(
      droppedOptions(
        [
          { name: 'a', text: 'CONFIG_A=m\n' },
          { name: 'b', text: 'CONFIG_A=y\n' },
        ],
        config,
      ),
    ).to.deep.equal([]);
  });

  it("the base and each architecture's fragment build in everything the scenarios can ask for on that architecture", () => {
    const base = readFileSync(path.join(RECIPES_DIR, 'base.config'), 'utf8');
    for (const arch of Object.values(ARCHES)) {
      const file = path.join(RECIPES_DIR, 'arch', `${arch.name}.config`);
      const merged = parseFragment(`${base}\n${readFileSync(file, 'utf8')}`);
      const wanted: Array<[string, string[]]> = [
        ...Object.entries(FEATURES)
          .filter(([f]) => f !== 'serial')
          .map(([f, spec]) => [f, spec.options] as [string, string[]]),
        ['serial', arch.features.serial.options],
        ...(arch.features.port ? [['port', arch.features.port.options] as [string, string[]]] : []),
        ...(arch.features.userland ? [['userland', arch.features.userland.options] as [string, string[]]] : []),
      ];
      for (const [f, options] of wanted) {
        for (const opt of options) expect(merged.get(opt), `${opt} (feature ${f} on ${arch.name}) in base.config + ${file}`).to.equal('y');
      }
    }
  });

  it('a kernel for another architecture is cross-built: ARCH= and CROSS_COMPILE= from the table, its own key and id', () => {
    expect(kbuildArchArgs(ARCHES.x86_64, 'x64')).to.deep.equal([]);
    expect(kbuildArchArgs(ARCHES.arm64, 'x64')).to.deep.equal(['ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-']);
    expect(kbuildArchArgs(ARCHES.riscv64, 'x64')).to.deep.equal(['ARCH=riscv', 'CROSS_COMPILE=riscv64-linux-gnu-']);
    expect(kbuildArchArgs(ARCHES.arm64, 'arm64')).to.deep.equal([]);
    expect(() => kbuildArchArgs(ARCHES.x86_64, 'arm64')).to.throw(SetupError, /no cross compiler for x86_64 kernels on a arm64 host/);

    const spec = parseKernelSpec('build/nonroot-6.1,arch=arm64,config-add=CONFIG_LKDTM=y');
    expect(spec.id).to.equal('build/nonroot-6.1,arch=arm64,config-add=CONFIG_LKDTM=y');
    expect(parseKernelSpec('build/nonroot-6.1,arch=x86_64').id).to.equal('build/nonroot-6.1');
    expect(parseKernelSpec('git:/src/linux@v6.1,arch=riscv64').id).to.equal('git:/src/linux@v6.1,arch=riscv64');
    expect(() => parseKernelSpec('build/nonroot-6.1,arch=sparc')).to.throw(
      UsageError,
      /unknown architecture arch=sparc; known: x86_64, arm64, riscv64/,
    );
    expect(() => parseKernelSpec('build/nonroot-6.1,arch=arm64,arch=riscv64')).to.throw(UsageError, /arch= given twice/);

    const r = loadRecipe('nonroot-6.1');
    const x86 = recipeKey(r, '6.1.176-1');
    const arm = recipeKey(r, '6.1.176-1', undefined, { configAdd: [], fragments: [], arch: 'arm64' });
    expect(arm).to.match(/^build-nonroot-6\.1-arm64-6\.1\.176-1-[0-9a-f]{16}$/);
    expect(arm).to.not.equal(x86);
    const archEdited = (f: string): Buffer => (f.endsWith('arm64.config') ? Buffer.from('CONFIG_X=y\n') : readFileSync(f));
    expect(recipeKey(r, '6.1.176-1', archEdited, { configAdd: [], fragments: [], arch: 'arm64' })).to.not.equal(arm);
    expect(recipeKey(r, '6.1.176-1', archEdited)).to.equal(x86);
  });

  it('the patch is a git format-patch with a message and sign-off, using the init_* helpers', () => {
    const p = readFileSync(path.join(RECIPES_DIR, 'nonroot-6.1/0001-init-nonroot_initramfs.patch'), 'utf8');
    expect(p).to.match(/^From [0-9a-f]{40} /);
    expect(p).to.match(/^Subject: \[PATCH\] init: add nonroot_initramfs/m);
    expect(p).to.match(/^Signed-off-by: rootprobe/m);
    expect(p).to.match(/^diff --git a\/init\/initramfs\.c b\/init\/initramfs\.c$/m);
    for (const h of ['init_mkdir', 'init_mount', 'init_chdir', 'init_chroot']) expect(p).to.include(`+\terr = ${h}(`);
    expect(p).to.include('__setup("nonroot_initramfs"');
  });
});

describe('build/nonroot-6.1: built from source, booted @boot', function () {
  this.timeout(3_600_000);
  let kernel: Kernel;
  let seconds: number;
  before(async () => {
    const t = Date.now();
    kernel = await resolveKernel('build/nonroot-6.1', {
      onProgress: (m) => process.stderr.write(`      build/nonroot-6.1: ${m}\n`),
    });
    seconds = (Date.now() - t) / 1000;
  });

  it('is a whole cache entry: bzImage, vmlinux for a debugger, its .config and the build log, no modules', async () => {
    expect(kernel.id).to.equal('build/nonroot-6.1');
    expect(kernel.release).to.match(/^6\.1\.\d+/);
    expect(kernel.modulesDir).to.equal(undefined);
    const dir = path.dirname(kernel.vmlinuz);
    expect((await fs.readdir(dir)).sort()).to.deep.equal([
      '.rootprobe-manifest.json',
      'build.log',
      'bzImage',
      'config',
      'kernel.json',
      'vmlinux',
    ]);
    expect(kernel.vmlinux).to.equal(path.join(dir, 'vmlinux'));
    expect((await fs.readFile(kernel.vmlinux!)).subarray(0, 4).toString('latin1')).to.equal('\x7fELF');
    const log = await fs.readFile(path.join(dir, 'build.log'), 'utf8');
    expect(log).to.match(/patching file init\/initramfs\.c/);
    expect(log).to.match(/rootprobe: built in \d+ s/);
    expect(kernel.config?.get('CONFIG_MODULES')).to.equal(undefined);
    expect(kernel.description).to.match(/linux-source-6\.1 .* \+ 0001-init-nonroot_initramfs\.patch/);
  });

  it('is found in the cache the second time, without building', async () => {
    const t = Date.now();
    const again = await resolveKernel('build/nonroot-6.1');
    expect(again.sha256).to.equal(kernel.sha256);
    expect((Date.now() - t) / 1000).to.be.below(Math.max(30, seconds / 4));
  });

  it('has every feature built in; a config without one is refused before boot, naming it', () => {
    const all = Object.keys(FEATURES) as Feature[];
    expect(checkFeatures(kernel, all, 'scenario x').modules).to.deep.equal([]);
    const config = new Map(kernel.config);
    config.delete('CONFIG_DEVTMPFS');
    expect(() => checkFeatures({ ...kernel, config }, all, "scenario 'nonroot_initramfs'")).to.throw(
      SetupError,
      /lacks what scenario 'nonroot_initramfs' needs:\n\s+CONFIG_DEVTMPFS is not set/,
    );
  });

  it('boots nonroot_initramfs: / is a tmpfs atop rootfs and pivot_root works directly', async () => {
    const [sc] = pickScenarios(await loadScenarios(), ['nonroot_initramfs']);
    const artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-build-test-'));
    try {
      const r = await runScenario(sc!, kernel, { accel: (await detectAccel(kernel.vmlinuz)).accel, artifactsRoot: artifacts });
      expectNonrootPassed(r);
    } finally {
      await fs.rm(artifacts, { recursive: true, force: true });
    }
  });
});

function expectNonrootPassed(r: RunRecord): void {
  expect(r.outcome, r.message).to.equal('passed');
  expect(r.behaviours).to.deep.equal(['pivot_root from the initramfs: works (nonroot_initramfs: / is a tmpfs atop rootfs)']);
  expect(r.evidence.join('\n')).to.match(/initramfs: \/ is tmpfs \(mount \d+, parent mount \d+\)/);
  expect(r.evidence.join('\n')).to.match(/kernel: nonroot_initramfs: unpacking the initramfs into a tmpfs/);
  expect(r.evidence.join('\n')).to.match(/direct: pivot_root \/newroot \/newroot\/oldroot succeeded/);
}
