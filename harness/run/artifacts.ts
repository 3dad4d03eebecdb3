/**
 * A run's folder kept as its artifacts: console.log, result.stream, readback.json, run.json,
 * qemu.cmdline, qemu.sh (boots the kept images with the run's exact QEMU command line) and
 * reproduce.sh (reruns just that case through rootprobe). A kept folder is whole or absent:
 * it is assembled under a temporary name (removed on any signal, lifecycle.ts) and renamed
 * into place only once everything is written.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { standaloneArgv, type BootOutcome } from '../qemu/runner.ts';
import { shellLine, shellQuote } from '../quote.ts';
import { keepTmp, trackTempDir } from '../lifecycle.ts';
import { copyForRun } from '../image/disk.ts';
import type { RunReadback } from '../readback/result.ts';
import type { RunArtifacts, RunRecord } from './record.ts';

export function artifactSlug(scenario: string, kernel: string): string {
  const slug = `${scenario}--${kernel}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  // A file: kernel spec can be hundreds of characters; a folder name may have 255 bytes.
  return slug.length <= 120 ? slug : `${slug.slice(0, 100)}-${createHash('sha256').update(slug).digest('hex').slice(0, 12)}`;
}

/**
 * Moves the run's folder to where its artifacts are kept; copies it across file systems (a
 * tmpfs /tmp) or when ROOTPROBE_KEEP_TMP=1 keeps the temp folder too. A copy keeps the disk
 * images sparse (fs.cp writes out their holes: a kept 64 MiB loop disk with 13 MiB of data
 * took 64 MiB).
 */
export async function moveRunDir(runDir: string, dir: string): Promise<void> {
  if (!keepTmp()) {
    try {
      await fs.rename(runDir, dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
  }
  await fs.mkdir(dir, { recursive: true });
  for (const ent of await fs.readdir(runDir, { withFileTypes: true })) {
    const from = path.join(runDir, ent.name);
    const to = path.join(dir, ent.name);
    if (ent.isSocket()) continue;
    if (ent.isFile() && ent.name.endsWith('.img')) await copyForRun(from, to);
    else await fs.cp(from, to, { recursive: true });
  }
}

/** The folder a run's artifacts are kept in: `<artifactsRoot>/<name>--<kernel>/`. */
export function artifactDir(artifactsRoot: string, name: string, kernel: { id: string }): string {
  return path.resolve(artifactsRoot, artifactSlug(name, kernel.id));
}

/**
 * Moves a run's folder to `<artifactsRoot>/<name>--<kernel>/` (replacing an older one) with
 * its readback, its record, a script that reruns the case through rootprobe and one that boots
 * the kept images with the run's exact QEMU command line. The folder is assembled as
 * `<dir>.partial-<pid>` and renamed into place last: an interrupted run leaves no half folder.
 * `wholeMessage` (the record's message before it was folded) goes to `message.txt`.
 */
export async function keepArtifacts(
  runDir: string,
  name: string,
  kernel: { id: string },
  record: RunRecord,
  readback: RunReadback,
  boot: BootOutcome | undefined,
  opts: { artifactsRoot: string; wholeMessage?: string },
): Promise<RunArtifacts> {
  const dir = artifactDir(opts.artifactsRoot, name, kernel);
  const partial = `${dir}.partial-${process.pid}`;
  const untrack = trackTempDir(partial);
  await fs.rm(partial, { recursive: true, force: true });
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await moveRunDir(runDir, partial);
  await fs.rm(path.join(partial, 'res.sock'), { force: true });
  const art: RunArtifacts = {
    dir,
    consoleLog: path.join(dir, 'console.log'),
    resultStream: path.join(dir, 'result.stream'),
    qemuCmdline: path.join(dir, 'qemu.cmdline'),
    readback: path.join(dir, 'readback.json'),
    reproduce: path.join(dir, 'reproduce.sh'),
  };
  const inPartial = (p: string): string => path.join(partial, path.basename(p));
  await fs.writeFile(inPartial(art.readback), JSON.stringify(readback.toJSON(), null, 1));
  await fs.writeFile(path.join(partial, 'run.json'), JSON.stringify({ ...record, artifacts: art }, null, 1));
  if (opts.wholeMessage !== undefined) await fs.writeFile(path.join(partial, 'message.txt'), opts.wholeMessage);
  await fs.writeFile(
    inPartial(art.reproduce),
    [
      '#!/bin/sh',
      `# Reruns just this case (${name} on ${kernel.id}) through rootprobe, keeping its artifacts:`,
      `cd ${shellQuote(process.cwd())} && exec ${record.rerun} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  if (boot) {
    // The exact QEMU command, rewritten to use the kept images, with the result channel
    // going to a file and the console on the terminal.
    const argv = standaloneArgv(boot.argv).map((a) => a.split(runDir).join('.'));
    await fs.writeFile(
      path.join(partial, 'qemu.sh'),
      [
        '#!/bin/sh',
        '# Boots the kept images with the exact QEMU command line of this run.',
        `cd "$(dirname "$0")" && exec ${shellLine(argv)}`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  }
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(partial, dir);
  untrack();
  return art;
}
