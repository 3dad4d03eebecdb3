/**
 * The result channel's frames (docs/protocol.md):
 *
 *   ROOTPROBE-BEGIN v1 <stage> <length> <sha256>
 *   <base64 of the payload, lines of at most 76 characters>
 *   ROOTPROBE-END <stage>
 *
 * `FrameDecoder` reads the channel as it arrives, in chunks of any size (one byte at a time
 * works), and turns it into events: a good frame, a damaged frame (saying which check failed),
 * or a noise line outside any frame. Memory stays bounded: a payload may not exceed
 * `maxPayloadBytes` (64 MiB by default) and a line may not exceed `maxLineBytes`.
 */
import { createHash, type Hash } from 'node:crypto';

export type DamageReason = 'length' | 'hash' | 'truncated' | 'base64' | 'header';

export interface FrameEvent {
  kind: 'frame';
  stage: string;
  payload: Buffer;
}

export interface DamagedFrameEvent {
  kind: 'damaged';
  /** The stage named by the BEGIN line; `?` when the header was too broken to name one. */
  stage: string;
  reason: DamageReason;
  /** For people: e.g. "expected 1234 bytes, got 1200" or "sha256 mismatch: expected ab12.., got 9f3c..". */
  detail: string;
}

export interface NoiseEvent {
  kind: 'noise';
  /** The line without its line ending. */
  line: string;
}

export type ReadbackEvent = FrameEvent | DamagedFrameEvent | NoiseEvent;

export interface FrameDecoderOptions {
  /** Called for each event as it is decoded (push/end also return the events). */
  onEvent?: (event: ReadbackEvent) => void;
  /** A frame whose payload is larger is damaged ('length'). Default 64 MiB. */
  maxPayloadBytes?: number;
  /** Longer lines are cut (noise) or damage the frame they are in. Default 64 KiB. */
  maxLineBytes?: number;
}

export const PROTOCOL_VERSION = 'v1';
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
const BASE64_LINE_WIDTH = 76;

const STAGE_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const BEGIN_WORD = 'ROOTPROBE-BEGIN';
const END_WORD = 'ROOTPROBE-END';
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** True if `name` is a valid stage name per the protocol. */
export function isStageName(name: string): boolean {
  return STAGE_RE.test(name);
}

/** Encode one frame as the guest would send it (lines end in `\n`, the last one too). */
export function encodeFrame(stage: string, payload: Buffer | string): string {
  if (!isStageName(stage)) {
    throw new Error(`encodeFrame: stage name ${JSON.stringify(stage)} does not match [A-Za-z0-9_.-]{1,64}`);
  }
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const sha = createHash('sha256').update(data).digest('hex');
  const b64 = data.toString('base64');
  const lines = [`${BEGIN_WORD} ${PROTOCOL_VERSION} ${stage} ${data.length} ${sha}`];
  for (let i = 0; i < b64.length; i += BASE64_LINE_WIDTH) lines.push(b64.slice(i, i + BASE64_LINE_WIDTH));
  lines.push(`${END_WORD} ${stage}`);
  return lines.join('\n') + '\n';
}

interface OpenFrame {
  stage: string;
  length: number;
  sha256: string;
  chunks: Buffer[];
  received: number;
  hash: Hash;
  /** Base64 characters carried over to the next line (a line whose length is not a multiple of 4). */
  carry: string;
  /** Padding seen: no more data may follow. */
  padded: boolean;
  /** Line number (1-based, in the stream) of the BEGIN line, for details. */
  beginLine: number;
}

type State =
  | { mode: 'outside' }
  | { mode: 'frame'; frame: OpenFrame }
  /** After damage inside a frame: drop base64-looking lines up to the END line (or a BEGIN). */
  | { mode: 'skipping'; stage: string };

function short(hex: string): string {
  return hex.length > 12 ? `${hex.slice(0, 12)}..` : hex;
}

function quoteLine(line: string): string {
  const s = line.length > 80 ? `${line.slice(0, 80)}...` : line;
  return JSON.stringify(s);
}

export class FrameDecoder {
  private readonly onEvent?: (event: ReadbackEvent) => void;
  private readonly maxPayloadBytes: number;
  private readonly maxLineBytes: number;
  private state: State = { mode: 'outside' };
  /** Bytes of the current, unfinished line. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The current line got too long: its first part was handled, drop the rest up to the newline. */
  private discardingLine = false;
  private lineNo = 0;
  private ended = false;
  private out: ReadbackEvent[] = [];

  constructor(options: FrameDecoderOptions = {}) {
    this.onEvent = options.onEvent;
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  /** Feed the next chunk of the stream; returns the events it completed. */
  push(chunk: Buffer | string): ReadbackEvent[] {
    if (this.ended) throw new Error('FrameDecoder: push() after end()');
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(0x0a, start);
      const stop = nl === -1 ? buf.length : nl;
      if (!this.discardingLine) this.appendPending(buf.subarray(start, stop));
      if (nl === -1) break;
      if (this.discardingLine) this.discardingLine = false;
      else this.finishLine();
      start = nl + 1;
    }
    return this.drain();
  }

  /** The stream is over: flush an unterminated last line and report a frame left open. */
  end(): ReadbackEvent[] {
    if (this.ended) return [];
    if (this.pendingBytes > 0 && !this.discardingLine) this.finishLine();
    this.pending = [];
    this.pendingBytes = 0;
    this.ended = true;
    const st = this.state;
    if (st.mode === 'frame') {
      this.damage(
        st.frame.stage,
        'truncated',
        `the stream ended before "${END_WORD} ${st.frame.stage}" (frame began on line ${st.frame.beginLine}, ` +
          `${st.frame.received} of ${st.frame.length} bytes received)`,
      );
    }
    this.state = { mode: 'outside' };
    return this.drain();
  }

  private drain(): ReadbackEvent[] {
    const events = this.out;
    this.out = [];
    return events;
  }

  private emit(event: ReadbackEvent): void {
    this.out.push(event);
    this.onEvent?.(event);
  }

  private damage(stage: string, reason: DamageReason, detail: string): void {
    this.emit({ kind: 'damaged', stage, reason, detail });
  }

  private appendPending(part: Buffer): void {
    if (part.length === 0) return;
    const room = this.maxLineBytes - this.pendingBytes;
    if (part.length <= room) {
      this.pending.push(part);
      this.pendingBytes += part.length;
      return;
    }
    // The line is too long: handle what fits, then drop the rest of it.
    this.pending.push(part.subarray(0, room));
    this.pendingBytes += room;
    const text = this.takeLine();
    this.lineNo++;
    this.discardingLine = true;
    const st = this.state;
    if (st.mode === 'frame') {
      this.damage(
        st.frame.stage,
        'base64',
        `line ${this.lineNo} is longer than ${this.maxLineBytes} bytes; base64 lines have at most ${BASE64_LINE_WIDTH} characters`,
      );
      this.state = { mode: 'skipping', stage: st.frame.stage };
    } else {
      this.emit({ kind: 'noise', line: `${text} [line cut at ${this.maxLineBytes} bytes]` });
    }
  }

  private takeLine(): string {
    const line = Buffer.concat(this.pending, this.pendingBytes).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    return line;
  }

  private finishLine(): void {
    this.lineNo++;
    let raw = this.takeLine().replace(/\r+$/, '');
    // Console text that lacked its newline may stand in front of a BEGIN: split it off as noise.
    const begin = raw.indexOf(`${BEGIN_WORD} `);
    if (begin > 0) {
      this.emit({ kind: 'noise', line: raw.slice(0, begin) });
      raw = raw.slice(begin);
    }
    const line = raw.replace(/^\r+/, '');
    const trimmed = line.trim();
    const word = trimmed.split(/\s+/, 1)[0];
    const st = this.state;

    if (word === BEGIN_WORD) {
      if (st.mode === 'frame') {
        this.damage(
          st.frame.stage,
          'truncated',
          `no "${END_WORD} ${st.frame.stage}" before the next ${BEGIN_WORD} on line ${this.lineNo} ` +
            `(${st.frame.received} of ${st.frame.length} bytes received)`,
        );
      }
      this.begin(trimmed);
      return;
    }

    if (st.mode === 'outside') {
      this.emit({ kind: 'noise', line: raw });
      return;
    }

    if (word === END_WORD) {
      const endStage = trimmed.slice(END_WORD.length).trim();
      if (st.mode === 'skipping') {
        this.state = { mode: 'outside' };
        return;
      }
      const frame = st.frame;
      this.state = { mode: 'outside' };
      if (endStage !== frame.stage) {
        this.damage(
          frame.stage,
          'truncated',
          `frame ended by "${END_WORD} ${endStage}" on line ${this.lineNo}, expected "${END_WORD} ${frame.stage}" ` +
            `(${frame.received} of ${frame.length} bytes received)`,
        );
        return;
      }
      this.close(frame);
      return;
    }

    if (st.mode === 'skipping') {
      // Remaining base64 of a damaged frame is swallowed; anything else is ordinary noise.
      if (trimmed !== '' && !BASE64_RE.test(trimmed)) this.emit({ kind: 'noise', line: raw });
      return;
    }

    this.data(st.frame, trimmed);
  }

  private begin(line: string): void {
    const fields = line.split(/\s+/);
    const stageField = fields[2] ?? '';
    const stage = isStageName(stageField) ? stageField : '?';
    const fail = (detail: string): void => {
      this.damage(stage, 'header', `line ${this.lineNo}: ${detail}: ${quoteLine(line)}`);
      this.state = { mode: 'skipping', stage };
    };
    if (fields.length !== 5) {
      return fail(`expected "${BEGIN_WORD} ${PROTOCOL_VERSION} <stage> <length> <sha256>", got ${fields.length} fields`);
    }
    const [, version, , lengthText, sha] = fields as [string, string, string, string, string];
    if (version !== PROTOCOL_VERSION) {
      return fail(`protocol version ${JSON.stringify(version)} is not supported (this host reads ${PROTOCOL_VERSION})`);
    }
    if (stage === '?') return fail(`stage name ${JSON.stringify(stageField)} does not match [A-Za-z0-9_.-]{1,64}`);
    if (!/^[0-9]{1,20}$/.test(lengthText)) return fail(`length ${JSON.stringify(lengthText)} is not a decimal number`);
    if (!/^[0-9a-fA-F]{64}$/.test(sha)) return fail(`sha256 ${JSON.stringify(sha)} is not 64 hex digits`);
    const length = Number(lengthText);
    if (length > this.maxPayloadBytes) {
      this.damage(stage, 'length', `declared length ${length} bytes exceeds the limit of ${this.maxPayloadBytes} bytes; frame skipped`);
      this.state = { mode: 'skipping', stage };
      return;
    }
    this.state = {
      mode: 'frame',
      frame: {
        stage,
        length,
        sha256: sha.toLowerCase(),
        chunks: [],
        received: 0,
        hash: createHash('sha256'),
        carry: '',
        padded: false,
        beginLine: this.lineNo,
      },
    };
  }

  private data(frame: OpenFrame, text: string): void {
    if (text === '') return;
    const skip = (reason: DamageReason, detail: string): void => {
      this.damage(frame.stage, reason, detail);
      this.state = { mode: 'skipping', stage: frame.stage };
    };
    if (!BASE64_RE.test(text)) {
      return skip('base64', `line ${this.lineNo} is not base64: ${quoteLine(text)}`);
    }
    if (frame.padded) {
      return skip('base64', `line ${this.lineNo} follows the base64 padding ('=') that ends the payload`);
    }
    let all = frame.carry + text;
    if (text.endsWith('=')) {
      frame.padded = true;
      if (all.length % 4 !== 0) {
        return skip('base64', `line ${this.lineNo}: base64 padding at a position that is not a multiple of 4 characters`);
      }
    }
    const usable = all.length - (all.length % 4);
    frame.carry = all.slice(usable);
    all = all.slice(0, usable);
    if (all === '') return;
    const bytes = Buffer.from(all, 'base64');
    if (frame.received + bytes.length > frame.length) {
      return skip('length', `expected ${frame.length} bytes, got more than that (${frame.received + bytes.length} by line ${this.lineNo})`);
    }
    frame.received += bytes.length;
    frame.hash.update(bytes);
    frame.chunks.push(bytes);
  }

  private close(frame: OpenFrame): void {
    if (frame.carry.length > 0) {
      // 2 or 3 leftover characters are unpadded base64 (still decodable); 1 is not base64 at all.
      if (frame.carry.length === 1) {
        this.damage(frame.stage, 'base64', `the base64 text ends with a lone character (length not a multiple of 4)`);
        return;
      }
      const bytes = Buffer.from(frame.carry, 'base64');
      frame.carry = '';
      frame.received += bytes.length;
      frame.hash.update(bytes);
      frame.chunks.push(bytes);
    }
    if (frame.received !== frame.length) {
      this.damage(frame.stage, 'length', `expected ${frame.length} bytes, got ${frame.received}`);
      return;
    }
    const got = frame.hash.digest('hex');
    if (got !== frame.sha256) {
      this.damage(frame.stage, 'hash', `sha256 mismatch: expected ${short(frame.sha256)}, got ${short(got)}`);
      return;
    }
    this.emit({ kind: 'frame', stage: frame.stage, payload: Buffer.concat(frame.chunks, frame.received) });
  }
}

/** Decode a whole recorded stream at once. */
export function decodeFrames(stream: Buffer | string, options: Omit<FrameDecoderOptions, 'onEvent'> = {}): ReadbackEvent[] {
  const decoder = new FrameDecoder(options);
  return [...decoder.push(stream), ...decoder.end()];
}
