/** Writing what QEMU sends to the run's files without holding it in memory. */
import type { WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';

/** Writes to a stream and pauses `source` until the stream drains (bounded memory). */
export function writeWithBackpressure(ws: WriteStream, chunk: Buffer, source: Pick<Readable, 'pause' | 'resume'>): void {
  if (!ws.write(chunk)) {
    source.pause();
    ws.once('drain', () => source.resume());
  }
}

/**
 * Gathers small chunks and writes them to `ws` together, at most `delayMs` later or once
 * `maxBytes` are waiting, with writeWithBackpressure's bound. QEMU's serial console comes
 * in chunks of a few bytes to a line: written one by one, a boot's console cost its node
 * process tens of milliseconds of write calls, CPU taken from the guests beside it.
 * flush() before ending the stream.
 */
export function batchedWriter(
  ws: WriteStream,
  source: Pick<Readable, 'pause' | 'resume'>,
  { delayMs = 20, maxBytes = 64 * 1024 }: { delayMs?: number; maxBytes?: number } = {},
): { push(chunk: Buffer): void; flush(): void } {
  let chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (size === 0) return;
    const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    chunks = [];
    size = 0;
    if (!ws.destroyed) writeWithBackpressure(ws, buf, source);
  };
  return {
    push(chunk: Buffer): void {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= maxBytes) flush();
      else timer ??= setTimeout(flush, delayMs);
    },
    flush,
  };
}

/** Ends a stream; resolves once it is flushed, or at once if it failed or was destroyed. */
export function endStream(ws: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (ws.writableFinished || ws.destroyed) return resolve();
    ws.once('error', () => resolve());
    ws.end(() => resolve());
  });
}
