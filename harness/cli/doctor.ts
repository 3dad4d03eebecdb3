/**
 * `rootprobe doctor [--install]`: reports every host tool, header and static library that a
 * kernel provider or feature declares (harness/host.ts, the list they check too), the cache folder
 * and the accelerator situation; with --install, as root on Debian or Ubuntu, installs the
 * missing packages with apt-get (nothing else is ever installed on the host). --browser adds
 * Chromium, which only the HTML report's browser test needs (test/html-browser.test.ts).
 */
import { COMMANDS, parseCommand } from './options.ts';
import { spawnSync } from 'node:child_process';
import { promises as fs, constants } from 'node:fs';
import { HOST_FILES, findCommand, findHostFile, hostNeeds } from '../host.ts';
import { cacheRoot } from '../cache.ts';
import { SetupError } from '../errors.ts';
import { isStatic, readElf } from '../image/elf.ts';
import { BROWSER_PACKAGE, findChromium } from '../report/browser.ts';

/** A dynamically linked busybox cannot run on a root without its libraries. */
async function staticBusybox(p: string): Promise<boolean> {
  try {
    return isStatic(await readElf(p));
  } catch {
    return false;
  }
}

export async function doctor(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.doctor, args);
  if (parsed.help) return 0;
  const { values } = parsed;
  // One list (harness/host.ts): every command, header and static library any kernel provider or
  // feature declares it needs; the providers check the same entries (requireFor).
  const rows: Array<{ tool: string; pkg: string; found?: string; ok: boolean; note?: string; users: string }> = [];
  for (const n of hostNeeds()) {
    let ok = Boolean(n.found);
    let note: string | undefined;
    if (n.found && n.kind === 'command' && n.name === 'busybox' && !(await staticBusybox(n.found))) {
      ok = false;
      note = 'dynamically linked: install busybox-static';
    }
    rows.push({ tool: n.name, pkg: n.debianPackage, found: n.found, ok, note, users: n.neededBy.join(', ') });
  }
  for (const f of HOST_FILES) {
    const found = findHostFile(f);
    rows.push({ tool: f.name, pkg: f.debianPackage, found, ok: Boolean(found), users: f.name.startsWith('bios-') ? f.purpose : 'uefi' });
  }
  if (values.browser) {
    const found = findChromium();
    rows.push({
      tool: 'chromium',
      pkg: BROWSER_PACKAGE,
      found,
      ok: Boolean(found),
      note: found ? undefined : "for the HTML report's browser test",
      users: 'the HTML browser test',
    });
  }
  const missing = [...new Set(rows.filter((r) => !r.ok).map((r) => r.pkg))];
  if (missing.length > 0 && values.install) {
    if (process.getuid?.() !== 0) throw new SetupError(`--install needs root (apt-get install ${missing.join(' ')})`);
    if (!findCommand('apt-get')) throw new SetupError(`--install needs apt-get (Debian or Ubuntu); install: ${missing.join(' ')}`);
    process.stderr.write(`installing: ${missing.join(' ')}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const upd = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    if (upd.status !== 0) throw new SetupError('apt-get update failed (see above)');
    const inst = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
    if (inst.status !== 0) throw new SetupError(`apt-get install ${missing.join(' ')} failed (see above)`);
    return doctor(values.browser ? ['--browser'] : []);
  }
  const w = Math.max(...rows.map((r) => r.tool.length)) + 2;
  for (const r of rows) {
    const state = r.ok ? `ok   ${r.found}` : `MISSING (Debian package ${r.pkg}; for ${r.users})${r.note ? `: ${r.note}` : ''}`;
    process.stdout.write(`${r.tool.padEnd(w)}${state}\n`);
  }
  const cache = cacheRoot();
  await fs.mkdir(cache, { recursive: true }).catch(() => undefined);
  const writable = await fs.access(cache, constants.W_OK).then(
    () => true,
    () => false,
  );
  process.stdout.write(`${'cache'.padEnd(w)}${writable ? 'ok  ' : 'NOT WRITABLE'} ${cache}\n`);
  const kvm = await fs.access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => 'present and accessible: a probe boot decides whether it works (cached per boot)',
    () => 'not accessible: guests run under TCG',
  );
  process.stdout.write(`${'kvm'.padEnd(w)}${kvm}\n`);
  const [major, minor] = process.versions.node.split('.').map(Number);
  const nodeOk = major > 20 || (major === 20 && minor >= 19);
  process.stdout.write(`${'node'.padEnd(w)}${nodeOk ? 'ok  ' : 'TOO OLD (need >= 20.19)'} ${process.version}\n`);
  if (missing.length > 0) {
    process.stdout.write(`\nmissing: ${missing.join(' ')}; run \`npx rootprobe doctor --install\` as root\n`);
    return 2;
  }
  return writable && nodeOk ? 0 : 2;
}
