/**
 * The evidence table (`rootprobe run --evidence FILE.md`): for each seed claim of the source
 * material (shared/seeds/README.md, kept here as data), the scenarios that check it (by each
 * scenario's `seeds`), and what each kernel run observed: the outcome, the behaviours it saw
 * and its evidence lines. Headed by the date, the kernels (ids and releases) and the
 * accelerator, so that a reader can tell exactly what was run where.
 */
import type { MatrixReport } from './formats.ts';
import type { RunRecord } from '../run/run-scenario.ts';
import { DEFAULT_ARCH } from '../arch/index.ts';

export interface SeedClaim {
  /** The seed's number, as scenarios name it in `seeds`: '004'. */
  seed: string;
  file: string;
  /** Where it comes from. */
  source: string;
  /** What it says, in one sentence. */
  says: string;
  /** What rootprobe must be able to show about it. */
  mustShow: string;
}

/** The seed table of shared/seeds/README.md, one row per seed. */
export const SEED_CLAIMS: readonly SeedClaim[] = [
  {
    seed: '000',
    file: '000_b655450cdf1f794d.txt',
    source: 'systemd-devel, 2012',
    says:
      'switch_root mounts the new root over rootfs with MS_MOVE + chroot, hiding rootfs; pivot_root keeps the old root ' +
      'visible under a directory, so the exe of a process started in the initramfs reads /var/run/rootfs/bin/sleep; ' +
      'returning to the initramfs at shutdown is a second pivot_root.',
    mustShow:
      '/proc/*/exe before and after each kind of root switch; a process started in the initramfs stays identifiable ' +
      'after pivot_root and not after switch_root; a pivot back into the old root.',
  },
  {
    seed: '001',
    file: '001_be76e10f6660c7ab.txt',
    source: 'unix.stackexchange',
    says:
      'pivot_root(2) acts on the whole mount namespace: it changes cwd/root of processes whose cwd/root was the old root ' +
      'and not of others; chroot without chdir leaves cwd outside the root, shown as (unreachable)/.',
    mustShow: 'per-process cwd and root readback; paths with (unreachable) and (deleted) decorations parsed, not mangled.',
  },
  {
    seed: '002',
    file: '002_1eb9554660405f1b.txt',
    source: 'LKML patch, 2020 (nonroot_initramfs)',
    says:
      'pivot_root fails (EINVAL) from the initramfs because rootfs can never be unmounted; the patch unpacks the ' +
      'initramfs into a tmpfs over rootfs; workarounds: mount --bind / /, or a two-stage archive.',
    mustShow:
      'the EINVAL on a stock kernel, each workaround (mount --bind / / and the host root it leaves below the container; the ' +
      "two-stage archive; retain_initrd and the memory it keeps), and the patched kernel's behaviour, from mountinfo (rootfs " +
      'hidden below a tmpfs); newer kernels changed this again.',
  },
  {
    seed: '003',
    file: '003_08ba108ab9f685fd.txt',
    source: 'LKML, 2001 (Al Viro)',
    says: "the kernel's own late boot overmounts the final root atop the absolute root (ramfs) and chroots into it.",
    mustShow:
      "the overmount visible in /proc/1/mountinfo: the new root's parent is the rootfs mount, both when user space switches " +
      'and when the kernel mounts the root itself (no initramfs); an initrd with /linuxrc running as PID > 1.',
  },
  {
    seed: '004',
    file: '004_c37a06a39b067500.txt',
    source: 'sysvinit bug #33517, 2011-2013',
    says:
      'a root on a loop device whose backing file lives on another partition cannot be unmounted at shutdown while init ' +
      '(or anything) holds files on it; the fix is a shutdown tmpfs, pivot_root into it, exec from it, then unmount the ' +
      'loop root, detach the loop device, unmount the host partition.',
    mustShow:
      'a clean shutdown proved from the host: the host partition image has no needs_recovery flag and e2fsck -fn passes; ' +
      'and the failing variant (a holder left behind) reported as such.',
  },
];

/** What the table needs of a scenario: its name and the seeds it checks. */
export interface ScenarioSeeds {
  name: string;
  seeds?: string[];
}

export interface EvidenceOptions {
  /** The date printed in the header (default: now). */
  now?: Date;
  /** At most this many evidence lines per cell (default 12); the rest are counted. */
  maxLines?: number;
}

const OUTCOME: Record<string, string> = {
  passed: 'PASS',
  failed: 'FAIL',
  panic: 'PANIC',
  timeout: 'TIMEOUT',
  'missing-stage': 'MISSING STAGE',
  error: 'ERROR',
  skipped: 'SKIPPED',
};

/** Text for a Markdown table cell: pipes escaped, line breaks as <br>, HTML-ish brackets kept literal. */
export function cell(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replace(/\r?\n/g, '<br>');
}

function code(text: string): string {
  // Inline code cannot hold a backtick run of the same length: use a longer fence.
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** One run's cell: outcome (and why, if not passed), behaviours, evidence lines. */
export function runCell(r: RunRecord, maxLines = 12): string {
  if (r.outcome === 'skipped') return `**SKIPPED** (not booted): ${cell((r.message ?? '').split('\n')[0].slice(0, 400))}`;
  const parts: string[] = [`**${OUTCOME[r.outcome] ?? r.outcome.toUpperCase()}** (${(r.durationMs / 1000).toFixed(1)} s)`];
  if (r.outcome !== 'passed' && r.message) parts.push(cell(r.message.split('\n')[0].slice(0, 400)));
  for (const b of r.behaviours) parts.push(`behaviour: ${cell(b)}`);
  const lines = r.evidence.slice(0, maxLines).map((l) => cell(`• ${l}`));
  if (r.evidence.length > maxLines) lines.push(`… ${r.evidence.length - maxLines} more (see the JSON report)`);
  parts.push(...lines);
  return parts.join('<br>');
}

interface KernelColumn {
  id: string;
  release: string;
}

function kernelsOf(report: MatrixReport): KernelColumn[] {
  const out: KernelColumn[] = [];
  for (const r of report.runs) if (!out.some((k) => k.id === r.kernel)) out.push({ id: r.kernel, release: r.kernelRelease });
  return out;
}

/** The evidence table of a matrix report as a Markdown document. */
export function evidenceMarkdown(report: MatrixReport, scenarios: readonly ScenarioSeeds[], opts: EvidenceOptions = {}): string {
  const now = opts.now ?? new Date();
  const maxLines = opts.maxLines ?? 12;
  const kernels = kernelsOf(report);
  const ran = [...new Set(report.runs.map((r) => r.scenario))];
  const seedsOf = (name: string): string[] => scenarios.find((s) => s.name === name)?.seeds ?? [];
  const runOf = (scenario: string, kernel: string): RunRecord | undefined =>
    report.runs.find((r) => r.scenario === scenario && r.kernel === kernel);

  const out: string[] = [];
  out.push('# rootprobe evidence', '');
  out.push(`- date: ${now.toISOString().slice(0, 10)} (run started ${report.startedAt})`);
  out.push(`- rootprobe ${report.version}, node ${report.host.node}, ${report.host.cpus} CPUs`);
  out.push(`- accelerator: ${report.accel} (${report.accelReason})`);
  out.push(
    `- firmware: ${[...new Set(report.runs.map((r) => `${r.firmware ?? 'bios'}${r.boot ? ` via ${r.boot}` : ''}`))].join(', ') || 'none ran'}`,
  );
  const arches = [...new Set(report.runs.map((r) => r.arch ?? DEFAULT_ARCH))];
  out.push(
    `- architectures: ${arches.join(', ') || 'none ran'} (the architecture of each kernel is in its name; \`rootprobe diff\` across two shows what differs)`,
  );
  out.push(`- kernels: ${kernels.length ? kernels.map((k) => `${code(k.id)} (${k.release})`).join(', ') : 'none ran'}`);
  const s = report.summary;
  const skipped = s.skipped ?? 0;
  out.push(
    `- runs: ${s.total ?? report.runs.length}, passed ${s.passed ?? 0}, not passed ${(s.total ?? 0) - (s.passed ?? 0) - skipped}` +
      (skipped ? `, skipped ${skipped} (the scenario does not apply to that kernel; not booted)` : ''),
  );
  out.push('');
  out.push(
    'One row per seed claim and scenario that checks it (a scenario lists the seeds it checks in its `seeds`); ' +
      'each kernel column shows the outcome, the behaviours the run saw and its evidence lines.',
    '',
  );

  const header = ['seed', 'claim: what rootprobe must show', 'scenario', ...kernels.map((k) => `${cell(k.id)}<br>${cell(k.release)}`)];
  out.push(`| ${header.join(' | ')} |`);
  out.push(`|${header.map(() => '---').join('|')}|`);

  const row = (cells: string[]): void => {
    out.push(`| ${cells.join(' | ')} |`);
  };
  for (const claim of SEED_CLAIMS) {
    const checking = ran.filter((n) => seedsOf(n).includes(claim.seed));
    const claimCell = `**${cell(claim.source)}**: ${cell(claim.mustShow)}`;
    if (checking.length === 0) {
      row([claim.seed, claimCell, '*no scenario in this run*', ...kernels.map(() => '')]);
      continue;
    }
    checking.forEach((name, i) => {
      row([
        i === 0 ? claim.seed : '',
        i === 0 ? claimCell : '〃',
        code(name),
        ...kernels.map((k) => {
          const r = runOf(name, k.id);
          return r ? runCell(r, maxLines) : 'not run';
        }),
      ]);
    });
  }

  const known = new Set(SEED_CLAIMS.map((c) => c.seed));
  const loose = ran.filter((n) => !seedsOf(n).some((sd) => known.has(sd)));
  if (loose.length > 0) {
    out.push('', '## Scenarios not tied to a seed claim', '');
    out.push(`| scenario | ${kernels.map((k) => `${cell(k.id)}<br>${cell(k.release)}`).join(' | ')} |`);
    out.push(`|---|${kernels.map(() => '---').join('|')}|`);
    for (const name of loose) {
      out.push(
        `| ${code(name)} | ${kernels
          .map((k) => {
            const r = runOf(name, k.id);
            return r ? runCell(r, maxLines) : 'not run';
          })
          .join(' | ')} |`,
      );
    }
  }
  out.push('', '## Seeds', '');
  for (const c of SEED_CLAIMS) out.push(`- **${c.seed}** (${c.file}, ${c.source}): ${c.says}`);
  out.push('');
  return out.join('\n');
}
