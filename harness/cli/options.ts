/**
 * The options of every command, as data: one table per command, read both by the parser
 * (node:util parseArgs) and by `rootprobe <command> --help`, so the help cannot list an option
 * the parser does not take, nor miss one it does.
 *
 *   const parsed = await parseCommand(COMMANDS.shell, args);
 *   if (parsed.help) return 0;           // `--help` / `-h`: the usage was printed
 *   const { values, positionals } = parsed;
 *
 * The kernel specs' forms in the help are made from the kernel-provider registry
 * (kernels/registry.ts) when a help is printed, not when this module is loaded: the registry
 * imports every provider, which `rootprobe list` and a usage error do not need (start-up time).
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import type { KernelProvider } from '../../kernels/provider.ts';

/** What a help made at print time is made from. */
export interface HelpContext {
  /** The kernel specs the registry's providers take, as one line of help. */
  kernels: string;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** May be given more than once (values is then a list). */
  multiple?: boolean;
  short?: string;
  /** The value's placeholder in the help (`FILE`, `N`); string options only. */
  arg?: string;
  /** One line (or a few) of help; a function when it is made from the registry (HelpContext). */
  help: string | ((ctx: HelpContext) => string);
}

export interface CommandSpec {
  /** As typed after `rootprobe`: 'run', 'run external'. */
  name: string;
  /** The synopsis after `rootprobe <name>`: positionals and required options. */
  synopsis: string;
  /** What the command does, one line. */
  summary: string;
  /** Taken positionals (false: none). */
  positionals: boolean;
  options: Record<string, OptionSpec>;
  /** More help after the options (environment, exit status). */
  notes?: string;
}

/** The kernel option's help: the default and every provider's forms (`rootprobe kernels` lists the kernels). */
export function kernelHelp(registered: readonly Pick<KernelProvider, 'forms'>[]): string {
  return `${DEFAULTS.kernel} (default), or ${registered.flatMap((p) => p.forms).join(', or ')} (rootprobe kernels lists the kernels)`;
}

/** The context of the help from the providers given (the registry's, or a test's). */
export function helpContext(registered: readonly Pick<KernelProvider, 'forms'>[]): HelpContext {
  return { kernels: kernelHelp(registered) };
}

/** The context of the help from the kernel-provider registry, imported only now. */
export async function loadHelpContext(): Promise<HelpContext> {
  const { providers } = await import('../../kernels/registry.ts');
  return helpContext(providers());
}

const KERNEL_HELP = (ctx: HelpContext) => ctx.kernels;
const CONFIG_OPTIONS = {
  'config-add': {
    type: 'string',
    multiple: true,
    arg: 'CONFIG_X=y',
    help: 'an option on top of the configuration of build/ and git: kernels (repeatable)',
  },
  fragment: {
    type: 'string',
    multiple: true,
    arg: 'FILE',
    help: 'a config fragment on top of the configuration of build/ and git: kernels (repeatable)',
  },
} as const;
/** Options several commands share, written once. */
const ARCH = {
  type: 'string',
  arg: 'ARCH',
  help: "the guests' architecture: x86_64 (default), arm64, riscv64; debian/<suite> takes its flavour (the default kernel too), build/ and git: kernels are cross-built for it",
} as const;
const ARTIFACTS = { type: 'string', arg: 'DIR', help: `where run folders are kept (default ./${DEFAULTS.artifactsRoot})` } as const;
const SCENARIOS = { type: 'string', multiple: true, arg: 'DIR', help: 'load more scenarios from DIR (repeatable)' } as const;
const CMDLINE = { type: 'string', arg: 'TEXT', help: "append to the guest's kernel command line" } as const;

const BOOT_OPTIONS = {
  firmware: {
    type: 'string',
    arg: 'bios|uefi',
    help: 'bios (default), or uefi: OVMF with a variable store of its own per run (the kernel through its EFI stub)',
  },
  boot: {
    type: 'string',
    arg: 'kernel|systemd-boot|uki',
    help: 'under uefi: kernel (default: the firmware gets the kernel from QEMU), systemd-boot (an ESP with systemd-boot and a BLS entry), uki (a unified kernel image on an ESP)',
  },
} as const;
const ALLOW_KERNEL_LOG = {
  type: 'string',
  multiple: true,
  arg: 'REGEX',
  help: 'a kernel report (WARNING, BUG, KASAN, lockdep...) whose title or line matches does not fail the run (repeatable); any other one does',
} as const;

/**
 * The values of --allow-kernel-log as regular expressions (`run`, `bisect`): the plan adds them
 * to the scenario's own allowKernelLog (plan/scenario.ts). One that is not a regular expression
 * is a UsageError naming it.
 */
export function allowKernelLogOption(values: string[] | undefined): RegExp[] {
  return (values ?? []).map((r) => {
    try {
      return new RegExp(r);
    } catch (e) {
      throw new UsageError(`--allow-kernel-log ${JSON.stringify(r)} is not a regular expression: ${(e as Error).message}`);
    }
  });
}

const EXIT_NOTES = 'exit status: 0 all passed, 1 some did not, 2 bad usage or missing setup';

export const COMMANDS = {
  run: {
    name: 'run',
    synopsis: '[scenario...] [--all] [--kernel K]... [options]',
    summary: 'boot scenarios on kernels, print verdicts and evidence',
    positionals: true,
    options: {
      all: { type: 'boolean', help: 'every scenario (also the default when none is named)' },
      kernel: { type: 'string', multiple: true, arg: 'K', help: (ctx) => `${ctx.kernels}; repeat for a matrix` },
      arch: ARCH,
      jobs: { type: 'string', arg: 'N', help: 'VMs booted at once (default: the number of cores)' },
      json: {
        type: 'string',
        arg: 'FILE',
        help: 'the report as JSON (schemas/report.schema.json): runs[] with stages, mountinfo, processes',
      },
      junit: { type: 'string', arg: 'FILE', help: 'JUnit XML, one testcase per scenario x kernel' },
      tap: { type: 'string', arg: 'FILE|-', help: 'TAP version 13 (- for standard output)' },
      kcidb: {
        type: 'string',
        arg: 'FILE',
        help: "KernelCI's KCIDB v5.3 JSON: a test per scenario and per stage (rootprobe.<scenario>.<stage>)",
      },
      evidence: {
        type: 'string',
        arg: 'FILE',
        help: 'a Markdown table: each seed claim, the scenarios checking it, what each kernel showed',
      },
      artifacts: ARTIFACTS,
      keep: { type: 'boolean', help: 'keep the run folder of passing runs too' },
      scenarios: SCENARIOS,
      cmdline: { type: 'string', arg: 'TEXT', help: "append to every guest's kernel command line" },
      html: { type: 'string', arg: 'FILE', help: "one self-contained page: each stage's mount tree, what changed, processes, console" },
      'allow-kernel-log': ALLOW_KERNEL_LOG,
      ...CONFIG_OPTIONS,
      ...BOOT_OPTIONS,
      retries: {
        type: 'string',
        arg: 'N',
        help: 'boot a cell that did not pass again, up to N times; every attempt is reported and a cell whose attempts disagree is marked flaky',
      },
      shard: {
        type: 'string',
        arg: 'I/N',
        help:
          'run only part I of N of the scenario x kernel matrix (cell k goes to part k mod N + 1): N CI jobs cover it once; ' +
          "auto[/N]: I and N from the CI (GitLab's CI_NODE_INDEX/CI_NODE_TOTAL, a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with auto/N, ROOTPROBE_JOB_INDEX/ROOTPROBE_JOB_TOTAL)",
      },
    },
    notes: 'environment: ROOTPROBE_ACCEL=kvm|tcg, ROOTPROBE_TIMEOUT_FACTOR, ROOTPROBE_CACHE, ROOTPROBE_DEBIAN_MIRROR\n' + EXIT_NOTES,
  },
  'run external': {
    name: 'run external',
    synopsis: '--initramfs FILE --kernel K | --uki FILE | --esp IMAGE [--disk FILE]... [options]',
    summary: "probe a distro's own initramfs and root (built by dracut, mkinitcpio, initramfs-tools, ...)",
    positionals: false,
    options: {
      initramfs: { type: 'string', arg: 'FILE', help: 'the initramfs as your generator made it (compressed, several segments: fine)' },
      kernel: { type: 'string', arg: 'K', help: `file:<bzImage> (your kernel), or ${DEFAULTS.kernel} etc.` },
      uki: {
        type: 'string',
        arg: 'FILE',
        help: "your unified kernel image instead of --initramfs and --kernel: booted under UEFI from an ESP as a copy with rootprobe's segment after its .initrd (the file is only read)",
      },
      esp: {
        type: 'string',
        arg: 'IMAGE',
        help: "your whole EFI system partition with systemd-boot: the entry it boots gets rootprobe's segment as one more initrd, on a sparse copy booted copy-on-write (the file is only read)",
      },
      firmware: BOOT_OPTIONS.firmware,
      disk: {
        type: 'string',
        multiple: true,
        arg: 'FILE',
        help: 'a disk image: /dev/vda, /dev/vdb, ... in order; writes go to a throwaway overlay',
      },
      cmdline: { type: 'string', arg: 'TEXT', help: 'your kernel command line (root=/dev/vda rw ...); the console is added' },
      end: {
        type: 'string',
        arg: 'poweroff|none',
        help: 'once booted, rootprobe asks the distro to power off (default); none: the guest decides',
      },
      timeout: { type: 'string', arg: 'SEC', help: `deadline under KVM (default ${DEFAULTS.externalTimeoutSec}; x5 under TCG)` },
      memory: { type: 'string', arg: 'MIB', help: "the guest's memory in MiB" },
      'storage-daemons': {
        type: 'boolean',
        help: "start two stand-in root storage daemons from the initramfs's own sleep, one with argv[0] '@rootprobe-storaged' (systemd spares it), one without; report each stage's sighting and fail if the marked one is gone",
      },
      json: { type: 'string', arg: 'FILE', help: 'the report as JSON (schemas/report.schema.json)' },
      html: { type: 'string', arg: 'FILE', help: "one self-contained page of the run: each stage's mount tree, processes, console" },
      keep: { type: 'boolean', help: 'keep the run folder when the run passed too' },
      artifacts: ARTIFACTS,
      name: { type: 'string', arg: 'NAME', help: 'the name of this run in reports (default: from the initramfs file)' },
    },
    notes: EXIT_NOTES,
  },
  shell: {
    name: 'shell',
    synopsis: '<scenario> [--kernel K] [--stage S] [--gdb]',
    summary: 'boot a scenario with the console on this terminal and a guest shell after stage S (Ctrl-a x quits)',
    positionals: true,
    options: {
      kernel: { type: 'string', arg: 'K', help: KERNEL_HELP },
      arch: ARCH,
      stage: { type: 'string', arg: 'S', help: 'the stage after whose probe the shell starts (default: the first)' },
      scenarios: SCENARIOS,
      cmdline: CMDLINE,
      ...BOOT_OPTIONS,
      gdb: { type: 'boolean', help: "QEMU's gdb stub on a socket of its own; prints the gdb command line (with vmlinux for git: kernels)" },
    },
  },
  build: {
    name: 'build',
    synopsis: '<scenario> [--kernel K] --out DIR [--force]',
    summary: "write a scenario's cpio segments, disk images, kernel and a runnable qemu.sh",
    positionals: true,
    options: {
      kernel: { type: 'string', arg: 'K', help: KERNEL_HELP },
      arch: ARCH,
      out: { type: 'string', arg: 'DIR', help: 'the folder to write (required); one holding other files needs --force' },
      force: { type: 'boolean', help: 'write into --out even when it holds files that are not an earlier build' },
      ...BOOT_OPTIONS,
      scenarios: SCENARIOS,
      cmdline: CMDLINE,
    },
  },
  diff: {
    name: 'diff',
    synopsis: '--kernel A --kernel B [scenario...] [options]',
    summary: 'the readback of each stage on two kernels side by side, only what differs (exit 1 when something does)',
    positionals: true,
    options: {
      kernel: { type: 'string', multiple: true, arg: 'K', help: (ctx) => `exactly two: ${ctx.kernels}` },
      arch: ARCH,
      jobs: { type: 'string', arg: 'N', help: 'VMs booted at once (default: the number of cores)' },
      json: {
        type: 'string',
        arg: 'FILE',
        help: "the report as JSON (schemas/report.schema.json), each run pair's differences in diffs[]",
      },
      artifacts: ARTIFACTS,
      scenarios: SCENARIOS,
      retries: { type: 'string', arg: 'N', help: 'boot a cell that did not pass again, up to N times' },
      html: {
        type: 'string',
        arg: 'FILE',
        help: 'one self-contained page: the two kernels side by side, stage by stage, differences marked',
      },
    },
    notes: 'exit status: 0 the same, 1 something differs (as diff(1)), 2 bad usage or missing setup',
  },
  list: {
    name: 'list',
    synopsis: '[--scenarios DIR]...',
    summary: 'the scenarios and the seed claims they check',
    positionals: false,
    options: {
      scenarios: SCENARIOS,
    },
  },
  kernels: {
    name: 'kernels',
    synopsis: '',
    summary: 'the known kernels, whether each is cached, its release',
    positionals: false,
    options: {},
  },
  doctor: {
    name: 'doctor',
    synopsis: '[--install]',
    summary: 'check the host tools (QEMU, busybox-static, e2fsprogs, ...) and install the missing ones',
    positionals: false,
    options: {
      install: { type: 'boolean', help: 'install the missing Debian packages with apt-get (as root)' },
      browser: { type: 'boolean', help: "also check (with --install: install) Chromium, for the HTML report's browser test" },
    },
  },
  show: {
    name: 'show',
    synopsis: 'RUN.json [--stage S] [--run N|SCENARIO] [--no-processes]',
    summary: "a report's mount trees stage by stage, as findmnt --tree prints them, with what changed, and the processes",
    positionals: true,
    options: {
      stage: { type: 'string', arg: 'S', help: 'only this stage' },
      run: { type: 'string', arg: 'N|SCENARIO', help: 'only this run (its number in the report, from 1, or its scenario)' },
      'no-processes': { type: 'boolean', help: 'the mount trees only' },
    },
  },
  report: {
    name: 'report',
    synopsis: 'RUN.json --html FILE',
    summary: 'the HTML page of a report written earlier (run --json, run external --json, diff --json)',
    positionals: true,
    options: {
      html: { type: 'string', arg: 'FILE|-', help: 'where to write the page (- for standard output)' },
    },
  },
  bisect: {
    name: 'bisect',
    synopsis: '<scenario> --kernel git:<tree> --good REV --bad REV [options]',
    summary: "the commit that changed a scenario's outcome: git bisect in rootprobe's own clone, each step built incrementally and booted",
    positionals: true,
    options: {
      kernel: { type: 'string', arg: 'git:<tree>', help: 'your kernel tree (a git work tree; never changed)' },
      arch: ARCH,
      good: { type: 'string', arg: 'REV', help: 'a revision on which the scenario passes (checked first)' },
      bad: { type: 'string', arg: 'REV', help: 'a later revision on which it does not (checked first)' },
      runs: { type: 'string', arg: 'N', help: 'boots per step (default 1): a step is good only when every run passed' },
      scenarios: SCENARIOS,
      json: {
        type: 'string',
        arg: 'FILE',
        help: 'every run, the steps, the first bad commit and the readback difference as JSON (docs/report.md)',
      },
      cmdline: CMDLINE,
      artifacts: ARTIFACTS,
      'allow-kernel-log': ALLOW_KERNEL_LOG,
      ...CONFIG_OPTIONS,
    },
    notes: 'exit status: 0 a first bad commit found, 1 only skipped commits left, 2 bad usage, or an end that does not behave as named',
  },
  'junit-merge': {
    name: 'junit-merge',
    synopsis: 'OUT IN...',
    summary: 'join the JUnit reports of --shard jobs into OUT',
    positionals: true,
    options: {},
  },
  new: {
    name: 'new',
    synopsis: '<name> [--disk] [--dir DIR]',
    summary: 'write a scenario folder that passes as written: scenario.ts, init.sh, a mocha test, package.json, tsconfig.json',
    positionals: true,
    options: {
      disk: { type: 'boolean', help: 'a scenario with an ext4 root disk the initramfs switches to' },
      dir: { type: 'string', arg: 'DIR', help: 'where to write the folder <name> (default: the current folder)' },
    },
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

const HELP_OPTION = { type: 'boolean', short: 'h', help: 'this help' } as const satisfies OptionSpec;

function optionLeft(name: string, o: OptionSpec): string {
  const short = o.short ? `-${o.short}, ` : '';
  return `${short}--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
}

/** Wraps `text` to lines of at most `width`, the later ones indented by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const words = text.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

function optionRows(spec: CommandSpec, ctx: HelpContext): string[] {
  const opts: Array<[string, OptionSpec]> = [...Object.entries(spec.options), ['help', HELP_OPTION]];
  const lefts = opts.map(([n, o]) => optionLeft(n, o) + (o.multiple ? '...' : ''));
  const w = Math.min(Math.max(...lefts.map((l) => l.length)) + 2, 28);
  return opts.map(([, o], i) => {
    const left = lefts[i];
    const pad = left.length + 2 > w ? `\n  ${' '.repeat(w)}` : ' '.repeat(w - left.length);
    const help = typeof o.help === 'function' ? o.help(ctx) : o.help;
    return `  ${left}${pad}${wrap(help, 96 - w, w + 2)}`;
  });
}

/** `rootprobe <command> --help`: the usage line and every option of the table. */
export function helpText(spec: CommandSpec, ctx: HelpContext): string {
  const rows = optionRows(spec, ctx);
  return [
    `usage: rootprobe ${spec.name}${spec.synopsis ? ` ${spec.synopsis}` : ''}`,
    '',
    spec.summary,
    '',
    'options:',
    ...rows,
    ...(spec.notes ? ['', spec.notes] : []),
  ].join('\n');
}

/** The top-level usage: every command's synopsis and summary, from the same tables. */
export function usageText(ctx: HelpContext): string {
  const specs: CommandSpec[] = Object.values(COMMANDS);
  const lines = specs.map((s) => `  rootprobe ${s.name}${s.synopsis ? ` ${s.synopsis}` : ''}\n      ${wrap(s.summary, 90, 6)}`);
  return [
    'rootprobe: QEMU-based tests of Linux boot and root-switch flows',
    '',
    'usage:',
    ...lines,
    '',
    'run options:',
    ...optionRows(COMMANDS.run, ctx),
    '',
    "`rootprobe <command> --help` lists a command's options.",
    'environment: ROOTPROBE_ACCEL=kvm|tcg, ROOTPROBE_TIMEOUT_FACTOR, ROOTPROBE_CACHE, ROOTPROBE_DEBIAN_MIRROR',
    EXIT_NOTES,
  ].join('\n');
}

type ParseConfig<O extends Record<string, OptionSpec>> = {
  args: string[];
  allowPositionals: true;
  options: O & { help: typeof HELP_OPTION };
};

type Parsed<O extends Record<string, OptionSpec>> = ReturnType<typeof parseArgs<ParseConfig<O>>> & { help: boolean };
type SpecOf<O extends Record<string, OptionSpec>> = {
  name: string;
  synopsis: string;
  summary: string;
  positionals: boolean;
  options: O;
  notes?: string;
};

/**
 * Parses a command's arguments with its table, printing nothing: help: true for `--help`/`-h`;
 * an unknown option or a missing value is a UsageError (exit 2) that names the command's --help.
 */
export function parseOptions<const O extends Record<string, OptionSpec>>(spec: SpecOf<O>, args: string[]): Parsed<O> {
  let parsed: ReturnType<typeof parseArgs<ParseConfig<O>>>;
  try {
    parsed = parseArgs<ParseConfig<O>>({ args, allowPositionals: true, options: { ...spec.options, help: HELP_OPTION } });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (!err.code?.startsWith('ERR_PARSE_ARGS')) throw e;
    throw new UsageError(
      `${spec.name}: ${err.message.split('\n')[0].replace(/\. To specify a positional.*$/, '')} (see: rootprobe ${spec.name} --help)`,
    );
  }
  if ((parsed.values as { help?: boolean }).help) return { ...parsed, help: true };
  if (!spec.positionals && parsed.positionals.length > 0) {
    throw new UsageError(
      `${spec.name} takes no ${parsed.positionals.length === 1 ? 'argument' : 'arguments'} (got ${parsed.positionals.join(' ')}); see: rootprobe ${spec.name} --help`,
    );
  }
  return { ...parsed, help: false };
}

/** parseOptions, and for `--help`/`-h` the command's help printed (made from the registry then). */
export async function parseCommand<const O extends Record<string, OptionSpec>>(spec: SpecOf<O>, args: string[]): Promise<Parsed<O>> {
  const parsed = parseOptions(spec, args);
  if (parsed.help) process.stdout.write(`${helpText(spec, await loadHelpContext())}\n`);
  return parsed;
}
