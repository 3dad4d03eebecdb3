/**
 * The options of the library's `boot(scenario, options)` (harness/index.ts), checked the way a
 * scenario definition is (scenario.ts): a zod schema with strict objects, from which the type
 * BootOptions is inferred, so the type checker and the check at run time cannot drift apart.
 * A misspelt key (`kernal`) is a UsageError naming it and the nearest known key; a value of the
 * wrong type is one naming the key and what it takes. Checked before any kernel is resolved.
 */
import { z } from 'zod';
import { UsageError } from './errors.ts';
import type { RunEvent } from './run/record.ts';
import { kindOf, nearestKey } from './scenario.ts';

const text = (what: string) => z.string({ error: (iss) => `must be a string (${what}), got ${kindOf(iss.input)}` });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (iss) => `must be ${values.map((v) => `'${v}'`).join(', ')} (got ${kindOf(iss.input)})` });

export const bootOptionsSchema = z.strictObject({
  /** A kernel spec as on the command line (default 'debian/bookworm'). */
  kernel: text('a kernel spec like debian/bookworm').optional(),
  /** Where the folder of a run that did not pass is kept (default ./rootprobe-artifacts). */
  artifactsRoot: text('a folder').optional(),
  /** Keep the folder of a passing run too. */
  keep: z.boolean({ error: (iss) => `must be true or false (got ${kindOf(iss.input)})` }).optional(),
  /** Appended to the kernel command line. */
  extraCmdline: text('kernel command line words').optional(),
  /** Called with each event of the run (phase, stage, console line). */
  onEvent: z
    .custom<(e: RunEvent) => void>((v) => typeof v === 'function', {
      error: (iss) => `must be a function (e) => ... (got ${kindOf(iss.input)})`,
    })
    .optional(),
  /** Aborting it stops the run. */
  signal: z.instanceof(AbortSignal, { error: (iss) => `must be an AbortSignal (got ${kindOf(iss.input)})` }).optional(),
  /** 'bios' (default) or 'uefi' (OVMF). */
  firmware: oneOf(['bios', 'uefi']).optional(),
  /** 'kernel' (default: -kernel), 'systemd-boot' or 'uki' (from an ESP rootprobe builds; uefi only). */
  boot: oneOf(['kernel', 'systemd-boot', 'uki']).optional(),
});

export type BootOptions = z.infer<typeof bootOptionsSchema>;

/** The options, checked: a UsageError listing every problem (unknown keys with the nearest known one). */
export function checkBootOptions(options: unknown): BootOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new UsageError(`boot(scenario, options): options must be an object (got ${kindOf(options)})`);
  }
  const r = bootOptionsSchema.safeParse(options, { reportInput: true });
  if (r.success) return r.data;
  const known = Object.keys(bootOptionsSchema.shape);
  const problems = r.error.issues.flatMap((iss) =>
    iss.code === 'unrecognized_keys'
      ? iss.keys.map((key) => {
          const near = nearestKey(key, known);
          return `\`${key}\`: ${near ? `unknown option; did you mean \`${near}\`?` : `unknown option (known: ${known.join(', ')})`}`;
        })
      : [`\`${iss.path.map(String).join('.')}\`: ${iss.message}`],
  );
  throw new UsageError(
    problems.length === 1
      ? `boot(scenario, options): ${problems[0]}`
      : `boot(scenario, options): ${problems.length} problems:\n  ${problems.join('\n  ')}`,
  );
}
