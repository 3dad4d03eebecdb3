/**
 * Is this file a kernel image QEMU's -kernel boots for the architecture, and which release is
 * it? The architecture table says which form (ArchSpec `kernelImage`): a bzImage (its boot
 * header, kernels/bzimage.ts), or the `Image` format (Documentation/arch/arm64/booting.rst,
 * Documentation/arch/riscv/boot-image-header.rst): a 64-byte header with the architecture's
 * `imageMagic` at offset 0x38, or, where `gzipImage`, that Image gzip-compressed (QEMU unpacks it).
 * The release of an Image comes from its "Linux version " banner (the image is not
 * compressed as a whole on these architectures, so the banner is in plain text).
 */
import { promises as fs } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ARCHES, type ArchSpec } from '../harness/arch/index.ts';
import { bzImageSizeProblem, readBzImageHeader } from './bzimage.ts';

export interface KernelImageInfo {
  /** What `uname -r` will say, where the image tells. */
  release?: string;
  /** The whole banner or version string. */
  versionString?: string;
  /** 'gzip' when the Image is gzip-compressed. */
  compression?: 'gzip';
}

/** The banner "Linux version 6.1.0-50-cloud-arm64 (debian-kernel@...) #1 SMP ..." in an image's bytes. */
export function bannerOf(bytes: Buffer): { release: string; versionString: string } | undefined {
  const at = bytes.indexOf('Linux version ');
  if (at < 0) return undefined;
  const end = bytes.indexOf(0, at);
  const text = bytes.toString('latin1', at + 'Linux version '.length, end > at ? Math.min(end, at + 400) : at + 400).split('\n')[0];
  const release = text.split(' ')[0];
  return /^\d+\.\d+/.test(release) ? { release, versionString: text.trim() } : undefined;
}

/**
 * The image's facts, or a `problem` saying why it is not a kernel QEMU boots for `arch` (said
 * for people: what was found and what was expected).
 */
export async function kernelImageInfo(file: string, arch: ArchSpec): Promise<KernelImageInfo | { problem: string }> {
  if (arch.kernelImage === 'bzImage') {
    const header = await readBzImageHeader(file);
    if (!header) return { problem: `it is not a bzImage (no "HdrS" boot header at offset 0x202)${await otherArch(file, arch)}` };
    const cut = bzImageSizeProblem(header, (await fs.stat(file)).size);
    if (cut) return { problem: cut };
    return { release: header.release, versionString: header.versionString };
  }
  let bytes = await fs.readFile(file);
  let compression: 'gzip' | undefined;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    if (!arch.gzipImage) return { problem: `it is gzip-compressed; QEMU boots an uncompressed Image on ${arch.name}` };
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      return { problem: `it is gzip-compressed but does not unpack (${(e as Error).message}): truncated or damaged` };
    }
    compression = 'gzip';
  }
  const want = arch.imageMagic;
  if (!want) return { problem: `${arch.name}'s architecture table names no Image magic (imageMagic)` };
  if (bytes.length < 64 || bytes.toString('latin1', 0x38, 0x3c) !== want) {
    return {
      problem: `it is not an ${arch.name} Image (no ${JSON.stringify(want)} magic at offset 0x38)${await otherArch(file, arch, bytes)}`,
    };
  }
  // The header's image_size (offset 0x10, little-endian 64-bit) is the memory the kernel
  // occupies, not the file's size: no truncation check beyond the banner's presence.
  const banner = bannerOf(bytes);
  return { ...(banner ?? {}), ...(compression ? { compression } : {}) };
}

/** ", but an arm64 Image" when the file is a kernel of another architecture rootprobe knows. */
async function otherArch(file: string, arch: ArchSpec, bytes?: Buffer): Promise<string> {
  const b = bytes ?? (await fs.readFile(file).catch(() => Buffer.alloc(0)));
  if (arch.kernelImage !== 'bzImage' && b.length > 0x210 && b.toString('latin1', 0x202, 0x206) === 'HdrS') return '; it is an x86 bzImage';
  for (const other of Object.values(ARCHES)) {
    if (other.name !== arch.name && other.imageMagic && b.length >= 64 && b.toString('latin1', 0x38, 0x3c) === other.imageMagic)
      return `; it is an ${other.name} Image`;
  }
  if (b.length > 4 && b.toString('latin1', 0, 4) === '\x7fELF') return '; it is an ELF file (vmlinux?), not the boot image';
  return '';
}
