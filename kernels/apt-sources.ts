/**
 * Where the Debian archive is: read from the machine's own apt configuration (one-line
 * `sources.list` files and deb822 `.sources` files), or from ROOTPROBE_DEBIAN_MIRROR.
 * No archive host name is written anywhere in rootprobe.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SetupError, UsageError } from '../harness/errors.ts';

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** A keyring path, or an inline ASCII-armoured key block (deb822 only). */
  signedBy?: string;
  enabled: boolean;
  /** The file it came from, for messages. */
  file: string;
}

export interface DebianArchive {
  uri: string;
  signedBy: string;
  /** Where the address came from (a file, or the environment variable). */
  from: string;
}

export const DEFAULT_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
export const MIRROR_ENV = 'ROOTPROBE_DEBIAN_MIRROR';

/** Suite names that mark an entry as the Debian archive itself (not security, not a third party). */
export const DEBIAN_SUITE_NAMES = [
  'buster',
  'bullseye',
  'bookworm',
  'trixie',
  'forky',
  'duke',
  'sid',
  'experimental',
  'oldoldstable',
  'oldstable',
  'stable',
  'testing',
  'unstable',
];

/** One-line format: `deb [opt=val ...] uri suite [component...]`. */
export function parseOneLineSources(text: string, file = 'sources.list'): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!m) continue;
    const opts = new Map<string, string>();
    for (const o of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const eq = o.indexOf('=');
      if (eq > 0) opts.set(o.slice(0, eq).toLowerCase(), o.slice(eq + 1));
    }
    out.push({
      types: [m[1]],
      uris: [m[3]],
      suites: [m[4]],
      components: m[5].trim().split(/\s+/).filter(Boolean),
      signedBy: opts.get('signed-by'),
      enabled: true,
      file,
    });
  }
  return out;
}

/** deb822 format: paragraphs of `Field: value`, continuation lines start with a space. */
export function parseDeb822Sources(text: string, file = 'debian.sources'): AptSource[] {
  const out: AptSource[] = [];
  const paragraphs: Array<Map<string, string>> = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  const flush = (): void => {
    if (cur.size) paragraphs.push(cur);
    cur = new Map();
    last = undefined;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (!line.trim()) {
      flush();
      continue;
    }
    if (/^[ \t]/.test(line)) {
      if (last) {
        const cont = line.slice(1);
        cur.set(last, `${cur.get(last)}\n${cont.trim() === '.' ? '' : cont}`);
      }
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    cur.set(last, line.slice(colon + 1).trim());
  }
  flush();
  const words = (v: string | undefined): string[] => (v ?? '').split(/\s+/).filter(Boolean);
  for (const p of paragraphs) {
    const signed = p.get('signed-by');
    out.push({
      types: words(p.get('types')),
      uris: words(p.get('uris')),
      suites: words(p.get('suites')),
      components: words(p.get('components')),
      signedBy: signed ? signed.replace(/^\n+/, '') || undefined : undefined,
      enabled: !/^(no|false|0)$/i.test(p.get('enabled') ?? 'yes'),
      file,
    });
  }
  return out;
}

function isDebianArchiveUri(uri: string): boolean {
  try {
    return new URL(uri).pathname.replace(/\/+$/, '').endsWith('/debian');
  } catch {
    return false;
  }
}

/** The first Debian archive entry: one of type deb whose suites include a Debian suite name or whose URI path ends in /debian. */
export function pickDebianArchive(sources: AptSource[]): DebianArchive | undefined {
  for (const s of sources) {
    if (!s.enabled || !s.types.includes('deb') || s.uris.length === 0) continue;
    if (s.suites.some((x) => DEBIAN_SUITE_NAMES.includes(x)) || s.uris.some(isDebianArchiveUri)) {
      const uri = s.uris.find(isDebianArchiveUri) ?? s.uris[0];
      return { uri, signedBy: s.signedBy ?? DEFAULT_KEYRING, from: s.file };
    }
  }
  return undefined;
}

/** Every source entry of the host's apt configuration, in apt's order (sources.list first, then the parts sorted). */
export async function readHostAptSources(etcApt = '/etc/apt'): Promise<AptSource[]> {
  const out: AptSource[] = [];
  const main = path.join(etcApt, 'sources.list');
  const text = await fs.readFile(main, 'utf8').catch(() => undefined);
  if (text !== undefined) out.push(...parseOneLineSources(text, main));
  const partsDir = path.join(etcApt, 'sources.list.d');
  const names = (await fs.readdir(partsDir).catch(() => [] as string[])).sort();
  for (const n of names) {
    const p = path.join(partsDir, n);
    if (n.endsWith('.list')) out.push(...parseOneLineSources(await fs.readFile(p, 'utf8').catch(() => ''), p));
    else if (n.endsWith('.sources')) out.push(...parseDeb822Sources(await fs.readFile(p, 'utf8').catch(() => ''), p));
  }
  return out;
}

/** The Debian archive to download kernels from: ROOTPROBE_DEBIAN_MIRROR, else the host's apt sources. */
export async function debianArchive(etcApt = '/etc/apt'): Promise<DebianArchive> {
  const env = process.env[MIRROR_ENV]?.trim();
  if (env) {
    let ok = false;
    try {
      ok = ['http:', 'https:', 'file:'].includes(new URL(env).protocol);
    } catch {
      ok = false;
    }
    if (!ok) throw new UsageError(`${MIRROR_ENV}="${env}" is not an http(s):// or file: URI of a Debian archive.`);
    return { uri: env, signedBy: DEFAULT_KEYRING, from: `$${MIRROR_ENV}` };
  }
  const picked = pickDebianArchive(await readHostAptSources(etcApt));
  if (!picked) {
    throw new SetupError(
      `no Debian archive found in ${etcApt}/sources.list or ${etcApt}/sources.list.d/ (an entry with a Debian suite ` +
        `name such as bookworm, or a URI ending in /debian). Set ${MIRROR_ENV} to the URI of a Debian archive.`,
    );
  }
  return picked;
}

/** A deb822 paragraph for our private apt tree. */
export function formatDeb822Source(archive: DebianArchive, suite: string): string {
  const signed = archive.signedBy.includes('\n')
    ? `Signed-By:\n${archive.signedBy
        .split('\n')
        .map((l) => ` ${l === '' ? '.' : l}`)
        .join('\n')}`
    : `Signed-By: ${archive.signedBy}`;
  return `Types: deb\nURIs: ${archive.uri}\nSuites: ${suite}\nComponents: main\n${signed}\n`;
}
