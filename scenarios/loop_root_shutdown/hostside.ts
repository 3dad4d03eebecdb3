/**
 * The host's view of the disks after the guest is gone: the partition image and the root
 * image stored in it as a file, read with e2fsprogs (dumpe2fs, e2fsck -fn, debugfs) without
 * mounting anything.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { fsck, imageInfo, type ImageInfo } from '../../harness/image/disk.ts';
import { requireTool } from '../../harness/host.ts';
import { makeTempDir, removeTempDir } from '../../harness/lifecycle.ts';
import { SetupError } from '../../harness/errors.ts';

export interface ImageState {
  info: ImageInfo;
  fsck: { clean: boolean; exitCode: number; output: string };
}

/** `debugfs -R REQUEST IMAGE` (read-only); stdout, or a SetupError with what debugfs said. */
export function debugfs(image: string, request: string): Promise<string> {
  const bin = requireTool('debugfs', 'to read files out of disk images');
  return new Promise((resolve, reject) => {
    execFile(bin, ['-R', request, image], { maxBuffer: 256 << 20, encoding: 'latin1' }, (err, stdout, stderr) => {
      // debugfs prints its banner on stderr and exits 0 even when the request failed: any other line is an error.
      const said = String(stderr)
        .split('\n')
        .filter((l) => l.trim() && !/^debugfs [0-9.]+ \(/.test(l));
      if (err || said.length > 0) reject(new SetupError(`debugfs -R '${request}' ${image}: ${said.join('; ') || err?.message}`));
      else resolve(String(stdout));
    });
  });
}

export async function imageState(image: string): Promise<ImageState> {
  return { info: await imageInfo(image), fsck: await fsck(image) };
}

/** One line: "clean, no needs_recovery, e2fsck -fn exit 0" or what is wrong. */
export function describeState(s: ImageState): string {
  const fsckLine = s.fsck.clean ? 'e2fsck -fn exit 0' : `e2fsck -fn exit ${s.fsck.exitCode}: ${firstProblem(s.fsck.output)}`;
  return `state "${s.info.state}", ${s.info.needsRecovery ? 'needs_recovery SET' : 'no needs_recovery'}, ${fsckLine}`;
}

function firstProblem(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const interesting = lines.filter((l) => !/^(Pass \d|e2fsck \d|[^:]+: \d+\/\d+ files)/.test(l));
  return (interesting.slice(0, 3).join(' | ') || lines.slice(-1)[0] || '').slice(0, 300);
}

/**
 * Copies `innerPath` out of the ext4 image `outer` into a temporary file, runs `fn` on it and
 * removes it again.
 */
export async function withInnerImage<T>(outer: string, innerPath: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await makeTempDir('rootprobe-inner-');
  try {
    const file = path.join(dir, path.posix.basename(innerPath));
    await debugfs(outer, `dump "${innerPath}" "${file}"`);
    return await fn(file);
  } finally {
    await removeTempDir(dir);
  }
}
