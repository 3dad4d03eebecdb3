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

/** Ends a stream; resolves once it is flushed, or at once if it failed or was destroyed. */
export function endStream(ws: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (ws.writableFinished || ws.destroyed) return resolve();
    ws.once('error', () => resolve());
    ws.end(() => resolve());
  });
}
