/**
 * The console of one boot, read line by line: a ring of the last lines, the notices that
 * explain a failure long before it (the initramfs failing to unpack, the kernel out of
 * memory), the panic line, and the kernel's reports of bugs it survived (verdict/kernel-log).
 * Pure: fed text as it arrives, it can be tested on a recorded console log without QEMU.
 */
import { StringDecoder } from 'node:string_decoder';
import { KernelLogWatcher, type KernelReport } from '../verdict/kernel-log.ts';
import { GUEST_DISK_ERROR_RE } from '../verdict/host-disk.ts';

export const PANIC_MARK = 'Kernel panic - not syncing';
const TAIL_LINES = 20;
/** A longer ring, only for what user space said before a panic (verdict/user-space.ts). */
const RECENT_LINES = 300;
const NOTICE_RE = new RegExp(
  `Initramfs unpacking failed|Out of memory|oom-kill|Unable to mount root fs|No working init found|EXT4-fs error|${GUEST_DISK_ERROR_RE.source}`,
);
const MAX_NOTICES = 10;
/** A console "line" longer than this is cut into pieces (a guest may print without newlines). */
const MAX_LINE = 64 * 1024;

export interface ConsoleHandlers {
  /** Each line (no \r\n). */
  onLine?(line: string): void;
  /** The first panic line, once. */
  onPanic?(panicLine: string): void;
}

export class ConsoleWatcher {
  readonly tail: string[] = [];
  readonly recent: string[] = [];
  readonly notices: string[] = [];
  panicLine: string | undefined;
  private readonly kernelLog = new KernelLogWatcher();
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly handlers: ConsoleHandlers = {}) {}

  get kernelReports(): KernelReport[] {
    return this.kernelLog.reports;
  }

  /** Bytes from the console, in any pieces. */
  write(chunk: Buffer): void {
    this.text(this.decoder.write(chunk));
  }

  /** The console closed: the last partial line is a line. */
  end(): void {
    const rest = this.decoder.end();
    if (rest) this.text(rest);
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  private text(text: string): void {
    this.partial += text;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      this.line(this.partial.slice(0, nl));
      this.partial = this.partial.slice(nl + 1);
    }
    while (this.partial.length > MAX_LINE) {
      this.line(this.partial.slice(0, MAX_LINE));
      this.partial = this.partial.slice(MAX_LINE);
    }
  }

  private line(line: string): void {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    this.recent.push(line.length > 2000 ? line.slice(0, 2000) : line);
    if (this.recent.length > RECENT_LINES) this.recent.shift();
    if (this.notices.length < MAX_NOTICES && NOTICE_RE.test(line)) this.notices.push(line.slice(0, 500));
    if (this.panicLine === undefined && line.includes(PANIC_MARK)) {
      this.panicLine = line.slice(line.indexOf(PANIC_MARK));
      this.handlers.onPanic?.(this.panicLine);
    } else if (this.panicLine === undefined) {
      this.kernelLog.push(line);
    }
    this.handlers.onLine?.(line);
  }
}
