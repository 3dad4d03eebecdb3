/**
 * The x86 boot protocol header of a bzImage: the `HdrS` magic at 0x202 and the kernel
 * version string, whose offset minus 0x200 is stored at 0x20E (Documentation/arch/x86/boot.rst).
 */
import { promises as fs } from 'node:fs';

export interface BzImageHeader {
  /** Boot protocol version, e.g. '2.15'. */
  protocol: string;
  /** The whole version string, e.g. '6.1.0-50-cloud-amd64 (debian-kernel@...) #1 SMP ...'. */
  versionString?: string;
  /** Its first word: what `uname -r` says. */
  release?: string;
}

/** Parses the header, or returns undefined when the bytes are not a bzImage. */
export function parseBzImageHeader(buf: Buffer): BzImageHeader | undefined {
  if (buf.length < 0x210 || buf.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const proto = buf.readUInt16LE(0x206);
  const header: BzImageHeader = { protocol: `${proto >> 8}.${proto & 0xff}` };
  const ptr = buf.readUInt16LE(0x20e);
  if (ptr !== 0) {
    const start = ptr + 0x200;
    const end = buf.indexOf(0, start);
    if (start < buf.length && end > start && end - start < 512) {
      header.versionString = buf.toString('latin1', start, end).trim();
      header.release = header.versionString.split(/\s+/)[0] || undefined;
    }
  }
  return header;
}

/** Reads the header of a file (its first 64 KiB are enough). */
export async function readBzImageHeader(file: string): Promise<BzImageHeader | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(0x10000);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return parseBzImageHeader(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
