/**
 * A private apt tree per suite under the cache (`<cacheRoot>/apt/<suite>/`): its own sources,
 * lists, package cache and an empty dpkg status, so the host's apt state is never read for
 * packages nor written. Used to look up and download kernel packages; nothing is installed.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, withLock } from '../harness/cache.ts';
import { SetupError } from '../harness/errors.ts';
import { requireTool } from '../harness/host.ts';
import { runGuarded } from '../harness/lifecycle.ts';
import { formatDeb822Source, type DebianArchive } from './apt-sources.ts';

/** How long downloaded package lists are used before `apt-get update` runs again. */
export const LISTS_MAX_AGE_MS = 24 * 3600 * 1000;

export interface PackageInfo {
  package: string;
  version: string;
  size: number;
  depends: string[][];
  fields: Record<string, string>;
}

interface Stamp {
  updatedAt: number;
  source: string;
}

/** Parses `Depends:`: a list of alternatives, each a list of package names (version and arch dropped). */
export function parseDepends(value: string | undefined): string[][] {
  if (!value) return [];
  return value
    .split(',')
    .map((alt) =>
      alt
        .split('|')
        .map((p) =>
          p
            .trim()
            .replace(/\s*\(.*\)$/, '')
            .replace(/:\S+$/, '')
            .trim(),
        )
        .filter(Boolean),
    )
    .filter((a) => a.length > 0);
}

/** Parses one control paragraph (`apt-cache show` output). */
export function parseControl(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) {
      if (Object.keys(out).length) break;
      continue;
    }
    if (/^\s/.test(line)) {
      if (last) out[last] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    out[last] = line.slice(colon + 1).trim();
  }
  return out;
}

export class PrivateApt {
  readonly dir: string;
  private readonly source: string;

  /**
   * One tree per suite and Debian architecture (amd64's keeps its old folder name), so that a
   * refresh fetches one architecture's lists only.
   */
  constructor(
    readonly suite: string,
    readonly archive: DebianArchive,
    readonly arch = 'amd64',
  ) {
    this.dir = path.join(cacheRoot(), 'apt', arch === 'amd64' ? suite : `${suite}-${arch}`);
    this.source = formatDeb822Source(archive, suite);
  }

  private get stampFile(): string {
    return path.join(this.dir, 'updated.json');
  }

  /** The time of the last successful update, if the lists are for the same source. */
  async listsUpdatedAt(): Promise<number | undefined> {
    try {
      const s = JSON.parse(await fs.readFile(this.stampFile, 'utf8')) as Stamp;
      return s.source === this.source ? s.updatedAt : undefined;
    } catch {
      return undefined;
    }
  }

  async listsFresh(maxAgeMs = LISTS_MAX_AGE_MS): Promise<boolean> {
    const t = await this.listsUpdatedAt();
    return t !== undefined && Date.now() - t < maxAgeMs && Date.now() >= t;
  }

  private async prepare(): Promise<void> {
    const d = this.dir;
    for (const sub of ['etc/sources.list.d', 'etc/preferences.d', 'etc/trusted.gpg.d', 'lists/partial', 'cache/archives/partial']) {
      await fs.mkdir(path.join(d, sub), { recursive: true });
    }
    await fs.writeFile(path.join(d, 'etc/sources.list'), '');
    await fs.writeFile(path.join(d, 'etc/sources.list.d/debian.sources'), this.source);
    await fs.writeFile(path.join(d, 'status'), '');
  }

  /** `-o` options that make apt use only this tree. */
  options(): string[] {
    const d = this.dir;
    const o: Record<string, string> = {
      'Dir::Etc::SourceList': path.join(d, 'etc/sources.list'),
      'Dir::Etc::SourceParts': path.join(d, 'etc/sources.list.d'),
      'Dir::Etc::Preferences': path.join(d, 'etc/preferences'),
      'Dir::Etc::PreferencesParts': path.join(d, 'etc/preferences.d'),
      'Dir::Etc::Trusted': path.join(d, 'etc/trusted.gpg'),
      'Dir::Etc::TrustedParts': path.join(d, 'etc/trusted.gpg.d'),
      'Dir::State::Lists': path.join(d, 'lists'),
      'Dir::State::Status': path.join(d, 'status'),
      'Dir::State::extended_states': path.join(d, 'extended_states'),
      'Dir::Cache': path.join(d, 'cache'),
      'Debug::NoLocking': '1',
      'APT::Architecture': this.arch,
      'APT::Architectures': this.arch,
      'APT::Sandbox::User': 'root',
      'Acquire::Languages': 'none',
      // Lists of another archive address stay; a failed update must not remove the good ones.
      'APT::Get::List-Cleanup': '0',
    };
    return Object.entries(o).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
  }

  private run(tool: 'apt-get' | 'apt-cache', args: string[], cwd?: string): Promise<string> {
    return this.runFull(tool, args, cwd).then((r) => r.stdout);
  }

  private prepared?: Promise<void>;

  private async runFull(tool: 'apt-get' | 'apt-cache', args: string[], cwd?: string): Promise<{ stdout: string; stderr: string }> {
    // The tree's sources file is (re)written for this archive before apt reads it: a run with
    // another address (ROOTPROBE_DEBIAN_MIRROR) may have left its own there.
    await (this.prepared ??= this.prepare());
    const cmd = requireTool(tool, 'to download Debian kernel packages');
    const all = [...this.options(), ...args];
    // In a process group of its own, ended with rootprobe (apt-get's http methods included).
    const r = await runGuarded(cmd, all, { cwd, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } });
    const stdout = r.stdout.toString('utf8');
    const stderr = r.stderr.toString('utf8');
    if (r.code !== 0) {
      throw new AptError(`${tool} ${args.join(' ')}`, stderr.trim() || (r.signal ? `ended by ${r.signal}` : `exit status ${r.code}`));
    }
    return { stdout, stderr };
  }

  /** `apt-get update` of the private lists. */
  async update(): Promise<void> {
    // apt-get update exits 0 when an index failed to download ("W: Failed to fetch").
    const { stderr } = await this.runFull('apt-get', ['-q', 'update']);
    const failed = stderr.split('\n').filter((l) => /^(E:|W: Failed to fetch|W: Some index files failed)/.test(l));
    if (failed.length) throw new AptError('apt-get update', failed.join('\n'));
    const stamp: Stamp = { updatedAt: Date.now(), source: this.source };
    const tmp = `${this.stampFile}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(stamp));
    await fs.rename(tmp, this.stampFile);
  }

  /** The candidate version of a package, or undefined if the lists do not have it. */
  async show(pkg: string): Promise<PackageInfo | undefined> {
    let out: string;
    try {
      out = await this.run('apt-cache', ['show', '--no-all-versions', pkg]);
    } catch (e) {
      if (e instanceof AptError && /No packages found|Unable to locate|no candidate|has no installation candidate/i.test(e.stderr)) {
        return undefined;
      }
      throw e;
    }
    const f = parseControl(out);
    if (!f.Package || !f.Version) return undefined;
    return { package: f.Package, version: f.Version, size: Number(f.Size ?? 0), depends: parseDepends(f.Depends), fields: f };
  }

  /** `apt-get download pkg=version...` into `destDir`; the .deb files it wrote. */
  async download(pkgs: Array<{ package: string; version: string }>, destDir: string): Promise<string[]> {
    await this.run('apt-get', ['-q', 'download', ...pkgs.map((p) => `${p.package}=${p.version}`)], destDir);
    return (await fs.readdir(destDir)).filter((n) => n.endsWith('.deb')).map((n) => path.join(destDir, n));
  }
}

const inProcess = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` holding the suite's apt tree: other calls in this process queue behind it, other
 * processes wait on a lock folder (taken over when its holder is gone). apt runs with
 * Debug::NoLocking, so this is what keeps two updates of one tree apart.
 */
export async function withAptTree<T>(apt: PrivateApt, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  const prev = inProcess.get(apt.dir) ?? Promise.resolve();
  const run = prev
    .catch(() => undefined)
    .then(async () => {
      await fs.mkdir(path.dirname(apt.dir), { recursive: true });
      return withLock(`${apt.dir}.lock`, fn, onWait);
    });
  inProcess.set(apt.dir, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(apt.dir) === run) inProcess.delete(apt.dir);
  }
}

export class AptError extends SetupError {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command} failed: ${stderr.split('\n').slice(-6).join('\n')}`);
  }
}
