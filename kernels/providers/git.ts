/** `git:<path>[@<rev>][,config=FILE]...`: the user's own kernel tree, built incrementally (kernels/git.ts). */
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError } from '../../harness/errors.ts';
import { resolveGitKernel, type GitSpec } from '../git.ts';
import { extrasSuffix, parseExtras, specForArch, splitSpec } from '../spec-options.ts';
import type { KernelProvider } from '../provider.ts';

const REV = /^[A-Za-z0-9._/~^{}:-]+$/;

export const gitProvider: KernelProvider<GitSpec> = {
  kind: 'git',
  forms: ['git:<tree>[@<rev>][,arch=<arch>][,base=defconfig|,config=<.config>][,fragment=FILE]...[,config-add=CONFIG_X=y]...'],
  summary:
    'your kernel source tree (a git work tree or not), built out of tree and incrementally; @<rev> builds that revision without touching your checkout',
  claims: (s) => s.startsWith('git:'),
  parse(s) {
    const { base, options } = splitSpec(s, ['config', 'fragment', 'config-add', 'arch', 'base']);
    let where = base.slice('git:'.length);
    let rev: string | undefined;
    const at = where.lastIndexOf('@');
    // A folder whose own name has an @ is a folder; otherwise the last @ starts the revision.
    if (at > 0 && REV.test(where.slice(at + 1)) && !existsSync(path.resolve(where))) {
      rev = where.slice(at + 1);
      where = where.slice(0, at);
    }
    if (!where) throw new UsageError(`kernel "${s}" names no source tree.`);
    const extras = parseExtras(s, options, true);
    // `git:~/src/linux`: the shell does not expand a ~ in the middle of a word; this does.
    const abs = path.resolve(where === '~' || where.startsWith('~/') ? path.join(os.homedir(), where.slice(1)) : where);
    return { kind: 'git', id: `git:${abs}${rev ? `@${rev}` : ''}${extrasSuffix(extras)}`, path: abs, ...(rev ? { rev } : {}), extras };
  },
  resolve: (k, onProgress) => resolveGitKernel(k, onProgress),
  forArch: (k, arch) => specForArch(k, arch),
};
