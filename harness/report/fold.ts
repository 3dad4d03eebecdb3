/**
 * Messages stay short: `foldMessage` folds a run of repeated lines into one ("… (the same line
 * 5213 more times)"), a run of lines that differ only in their numbers into the first and a
 * count, cuts over-long lines, and keeps the head and the tail of what is still too long. The
 * whole text belongs in the artifacts (a run's folder, a build log), not in a message.
 */

export interface FoldOptions {
  /** At most this many bytes (UTF-8) in the result; default 4096. */
  maxBytes?: number;
  /** At most this many lines; default 60. */
  maxLines?: number;
  /** At most this many characters in one line; default 500. */
  maxLineChars?: number;
}

const shape = (l: string): string => l.replace(/0x[0-9a-f]+|\d+/gi, '#');

/** The message, folded and cut to the limits (unchanged when it already fits and repeats nothing). */
export function foldMessage(text: string, opts: FoldOptions = {}): string {
  const maxBytes = opts.maxBytes ?? 4096;
  const maxLines = opts.maxLines ?? 60;
  const maxLineChars = opts.maxLineChars ?? 500;
  const lines = text.split('\n');
  const identical = fold(lines, false);
  // Lines alike but for their numbers are folded only when the message is still too long.
  const fits = identical.length <= maxLines && Buffer.byteLength(identical.join('\n')) <= maxBytes;
  const out = fits ? identical : fold(lines, true);
  return cut(out, maxBytes, maxLines, maxLineChars);
}

function fold(lines: string[], numbers: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    const l = lines[i];
    let same = i + 1;
    while (same < lines.length && lines[same] === l) same++;
    if (same - i > 1) {
      out.push(l, `… (the same line ${same - i - 1} more time${same - i - 1 === 1 ? '' : 's'})`);
      i = same;
      continue;
    }
    const s = shape(l);
    let alike = i + 1;
    while (numbers && alike < lines.length && s !== l && shape(lines[alike]) === s) alike++;
    if (alike - i > 2 && l.trim()) {
      out.push(l, `… (${alike - i - 1} more lines like it, with other numbers; the last: ${lines[alike - 1]})`);
      i = alike;
      continue;
    }
    out.push(l);
    i++;
  }
  return out;
}

function cut(out: string[], maxBytes: number, maxLines: number, maxLineChars: number): string {
  const cutLines = out.map((l) =>
    l.length > maxLineChars ? `${l.slice(0, maxLineChars)}… (${l.length - maxLineChars} more characters)` : l,
  );
  let kept = cutLines;
  if (kept.length > maxLines) {
    const head = Math.ceil(maxLines * 0.6);
    const tail = maxLines - head - 1;
    kept = [...kept.slice(0, head), `… (${kept.length - head - tail} lines left out)`, ...kept.slice(kept.length - tail)];
  }
  let result = kept.join('\n');
  if (Buffer.byteLength(result) > maxBytes) {
    const head = Buffer.from(result)
      .subarray(0, Math.floor(maxBytes * 0.6))
      .toString('utf8')
      .replace(/\uFFFD$/, '');
    const tailBuf = Buffer.from(result);
    const tail = tailBuf
      .subarray(tailBuf.length - Math.floor(maxBytes * 0.3))
      .toString('utf8')
      .replace(/^\uFFFD/, '');
    result = `${head}\n… (${Buffer.byteLength(result) - Buffer.byteLength(head) - Buffer.byteLength(tail)} bytes left out)\n${tail}`;
  }
  return result;
}
