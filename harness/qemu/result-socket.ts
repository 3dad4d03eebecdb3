/**
 * The host's end of the result channel. QEMU listens on a unix socket and waits for us before
 * it starts the guest; we connect (retrying while QEMU is still starting), write every byte to
 * `result.stream` (pausing the socket while the file drains) and hand it on as it arrives.
 * When QEMU is gone its end is closed: `drain` waits a bounded time for the last bytes.
 */
import type { WriteStream } from 'node:fs';
import * as net from 'node:net';
import { writeWithBackpressure } from './streams.ts';

/** How long to wait before trying again while QEMU has not opened its socket yet (QEMU waits for us before the guest starts: every ms here is on the boot's critical path). */
export const RETRY_MS = 5;

export interface ResultSocketOptions {
  socketPath: string;
  /** The file every byte goes to (result.stream). */
  file: WriteStream;
  /** Each chunk, as it arrives (after it was handed to `file`). */
  onData?(chunk: Buffer): void;
  /** The connection closed (QEMU exited or closed the channel). */
  onClose?(): void;
  /** False once the boot is ending: no new attempt to connect is made. */
  keepTrying(): boolean;
  retryMs?: number;
}

export class ResultSocket {
  private sock: net.Socket | undefined;
  private closed: Promise<void> = Promise.resolve();
  private retry: NodeJS.Timeout | undefined;
  private cancelled = false;

  constructor(private readonly opts: ResultSocketOptions) {}

  get connected(): boolean {
    return this.sock !== undefined;
  }

  /** Tries to connect until it does or `keepTrying` says no. */
  connect(): void {
    if (this.cancelled || !this.opts.keepTrying()) return;
    const s = net.createConnection(this.opts.socketPath);
    s.once('error', () => {
      s.destroy();
      if (this.sock === s) return; // an error after connecting: close follows
      this.retry = setTimeout(() => this.connect(), this.opts.retryMs ?? RETRY_MS);
    });
    s.once('connect', () => {
      this.sock = s;
      this.closed = new Promise((resolve) =>
        s.once('close', () => {
          this.opts.onClose?.();
          resolve();
        }),
      );
      s.on('data', (chunk: Buffer) => {
        writeWithBackpressure(this.opts.file, chunk, s);
        this.opts.onData?.(chunk);
      });
    });
  }

  /** No more attempts to connect (one under way may still succeed). */
  cancel(): void {
    this.cancelled = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
  }

  /** QEMU is gone: waits up to `ms` for the connection to close with the last bytes, then cuts it. */
  async drain(ms: number): Promise<void> {
    this.cancel();
    const sock = this.sock;
    if (!sock) return;
    const t = setTimeout(() => sock.destroy(), ms);
    await this.closed;
    clearTimeout(t);
  }
}
