/**
 * The x86 boot protocol header of a bzImage: the `HdrS` magic at 0x202, the kernel
 * version string, whose offset minus 0x200 is stored at 0x20E, and the sizes of the setup
 * code (setup_sects at 0x1F1, in 512-byte sectors after the boot sector; 0 means 4) and of
 * the protected-mode kernel (syssize at 0x1F4, in 16-byte units, protocol 2.04 and later)
 * (Documentation/arch/x86/boot.rst). A file shorter than those sizes is truncated; a longer
 * one is fine (a signed image carries its signature after them).
 */
import { promises as fs } from 'node:fs';

export interface BzImageHeader {
  /** Boot protocol version, e.g. '2.15'. */
  protocol: string;
  /** The whole version string, e.g. '6.1.0-50-cloud-amd64 (debian-kernel@...) #1 SMP ...'. */
  versionString?: string;
  /** Its first word: what `uname -r` says. */
  release?: string;
  /** Sectors of setup code after the boot sector. */
  setupSects: number;
  /** Bytes of protected-mode kernel, from syssize (protocol 2.04 and later). */
  kernelBytes?: number;
  /** The least size of a whole file: (setupSects + 1) * 512 + kernelBytes. */
  minFileSize?: number;
}

/** Why a file of `size` bytes with this header is not whole, or undefined when it is. */
export function bzImageSizeProblem(h: BzImageHeader, size: number): string | undefined {
  if (h.minFileSize === undefined || size >= h.minFileSize) return undefined;
  return (
    `it is truncated: its boot header says ${h.setupSects + 1} sectors of boot and setup code and ` +
    `${h.kernelBytes} bytes of kernel, at least ${h.minFileSize} bytes, but the file has ${size} ` +
    `(${h.minFileSize - size} missing)`
  );
}

/** Parses the header, or returns undefined when the bytes are not a bzImage. */
export function parseBzImageHeader(buf: Buffer): BzImageHeader | undefined {
  if (buf.length < 0x210 || buf.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const proto = buf.readUInt16LE(0x206);
  const setupSects = buf[0x1f1] || 4;
  const header: BzImageHeader = { protocol: `${proto >> 8}.${proto & 0xff}`, setupSects };
  if (proto >= 0x0204) {
    header.kernelBytes = buf.readUInt32LE(0x1f4) * 16;
    header.minFileSize = (setupSects + 1) * 512 + header.kernelBytes;
  }
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
