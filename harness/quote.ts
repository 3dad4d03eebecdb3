/** Quoting for POSIX shells: the one helper every script rootprobe writes goes through. */

/** One argument quoted for a POSIX shell (left bare when that is safe). */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_/.,:=+@%-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The argv on one line, quoted so a person can paste it into a shell. */
export function shellLine(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}
