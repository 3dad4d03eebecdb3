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

/**
 * Reads `source` at most once every `ms`: after each chunk it is paused and resumed `ms`
 * later, so what arrived meanwhile comes as one chunk. QEMU's serial ports write what the
 * guest sends a byte or two at a time: a boot's result channel came in ~12,000 chunks (its
 * console in ~9,500), each a wake-up, a read(2) and a callback of this process, taken from
 * the guests beside it under --jobs. The socket's buffer holds what waits (a boot's frames
 * are ~20 KB). A chunk of `busyBytes` or more means the writer is fast: then it is read on.
 * Not for the console: a guest flooding it filled the pipe during the pauses, its serial
 * port stalled, and what its tty still queued was lost at power-off (test/qemu.test.ts (e)).
 */
export function readInBatches(source: Readable, ms = 8, { busyBytes = 4096 }: { busyBytes?: number } = {}): void {
  // (pause() stops the reads of the file descriptor only once the stream's buffer holds its
  // high-water mark: the source must have a mark of 1, as ResultSocket's has.)
  let timer: NodeJS.Timeout | undefined;
  source.on('data', (chunk: Buffer) => {
    // A big chunk: the writer is fast (a flooding guest), and pausing would fill the pipe and
    // stall QEMU's serial port, whose queued bytes are lost at power-off: read on.
    if (timer || source.destroyed || chunk.length >= busyBytes) return;
    source.pause();
    timer = setTimeout(() => {
      timer = undefined;
      if (!source.destroyed) source.resume();
    }, ms);
  });
  source.once('close', () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  });
}

/** Ends a stream; resolves once it is flushed, or at once if it failed or was destroyed. */
export function endStream(ws: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (ws.writableFinished || ws.destroyed) return resolve();
    ws.once('error', () => resolve());
    ws.end(() => resolve());
  });
}
