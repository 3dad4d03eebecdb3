/**
 * Initramfs segments: an ImageTree packed as a newc cpio file in the cache (kind 'images'),
 * keyed by the tree's fingerprint; and the concatenation of several segments into one initrd,
 * which the kernel unpacks in order (later segments overwrite earlier files).
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { cachedEntry, contentHash } from '../cache.ts';
import { writeNewcFile } from '../cpio/index.ts';
import { UsageError } from '../errors.ts';
import type { ImageTree } from './tree.ts';

/** Bump when the bytes written for the same tree change. */
const SEGMENT_FORMAT = 'newc-segment-1';
export const SEGMENT_FILE = 'segment.cpio';

export interface SegmentOptions {
  compress?: 'none' | 'gzip';
}

/** The cache key of a segment: tree fingerprint, options, format version, SOURCE_DATE_EPOCH. */
export async function segmentKey(tree: ImageTree, opts: SegmentOptions = {}): Promise<string> {
  const compress = opts.compress ?? 'none';
  const fp = await tree.fingerprint();
  return `cpio-${contentHash(SEGMENT_FORMAT, fp, compress, process.env.SOURCE_DATE_EPOCH ?? '')}`;
}

/** The path of a cached newc segment holding `tree`, built if missing or damaged. */
export async function buildCpioSegment(tree: ImageTree, opts: SegmentOptions = {}): Promise<string> {
  const compress = opts.compress ?? 'none';
  if (compress !== 'none' && compress !== 'gzip') {
    throw new UsageError(`buildCpioSegment: compress must be 'none' or 'gzip', not ${JSON.stringify(compress)}.`);
  }
  await tree.validate();
  const key = await segmentKey(tree, { compress });
  const dir = await cachedEntry('images', key, async (tmp) => {
    await writeNewcFile(await tree.entries(), path.join(tmp, SEGMENT_FILE), { compress });
  });
  return path.join(dir, SEGMENT_FILE);
}

/**
 * Writes one initrd from several segments, each starting at a 4-byte boundary (zero padding
 * between, which the kernel skips). Written to a temporary name and renamed.
 */
export async function concatSegments(paths: string[], outPath: string): Promise<void> {
  if (paths.length === 0) throw new UsageError('concatSegments: no segments given.');
  for (const p of paths) {
    try {
      await fs.access(p);
    } catch {
      throw new UsageError(`concatSegments: the segment ${p} does not exist.`);
    }
  }
  const tmp = `${outPath}.tmp-${process.pid}`;
  const out = createWriteStream(tmp);
  let written = 0;
  try {
    for (const p of paths) {
      const pad = (4 - (written % 4)) % 4;
      if (pad) {
        out.write(Buffer.alloc(pad));
        written += pad;
      }
      await pipeline(createReadStream(p), out, { end: false });
      written += (await fs.stat(p)).size;
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await fs.rename(tmp, outPath);
  } catch (e) {
    out.destroy();
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
