/**
 * Provider `git:<path>[@<rev>][,config=FILE][,fragment=FILE]...[,config-add=CONFIG_X=y]...`:
 * the user's own kernel source tree, built out of tree (`make O=`) in a build folder under the
 * cache that is kept per tree and configuration, so a second build after a small change is
 * incremental.
 *
 * - Without `@<rev>` the tree is built as it is on disk, uncommitted changes and untracked
 *   files included (in a git work tree the cache key covers HEAD, the diff against it and the
 *   untracked files, so an unchanged tree boots from the cache without running make).
 * - With `@<rev>` (a git tree only) that revision is checked out in rootprobe's own clone of
 *   the repository under the cache (`git clone --shared`: it reads the user's objects and
 *   writes nothing there), never touching the user's checkout, index, HEAD or refs. A checkout
 *   rewrites only the files that differ, so moving between revisions (bisect) stays incremental.
 * - The configuration: the user's `.config` (config=FILE) or `make tinyconfig` (`make defconfig`
 *   with base=defconfig), then
 *   kernels/recipes/base.config (what every scenario needs), then fragments and config-add
 *   options; an option asked for that `olddefconfig` dropped is an error naming it.
 * - `,arch=arm64`: built for that architecture (cross-compiled, its fragment
 *   kernels/recipes/arch/<arch>.config after the base), in a build folder of its own.
 */
import { promises as fs, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { cacheRoot, cachedEntry, contentHash, withLock } from '../harness/cache.ts';
import { SetupError, UsageError } from '../harness/errors.ts';
import { requireTool } from '../harness/host.ts';
import { runGuarded } from '../harness/lifecycle.ts';
import { archFragment, BuildStepError, buildEnv, buildTools, kbuild, type Progress } from './kbuild.ts';
import { archByName, DEFAULT_ARCH } from '../harness/arch/index.ts';
import { RECIPES_DIR } from './build.ts';
import { loadKernelEntry } from './entry.ts';
import { extraFragments, extrasSuffix, type BuildExtras } from './spec-options.ts';
import type { Kernel } from './index.ts';

const BUILDER_VERSION = 1;

export interface GitSpec {
  kind: 'git';
  id: string;
  /** The tree as given, absolute. */
  path: string;
  rev?: string;
  extras: BuildExtras;
  [field: string]: unknown;
}

/**
 * Runs git read-only against a repository; its stdout. Through lifecycle.runGuarded, so a signal
 * to rootprobe ends it (a long `git archive` or `fetch` is no orphan); output beyond
 * `maxBuffer` is an error, never a silently cut result (the work tree's diff is a cache key).
 */
export async function git(cwd: string, args: string[], opts: { input?: string; maxBuffer?: number } = {}): Promise<string> {
  const bin = requireTool('git', 'to read a kernel source tree (git:)');
  const max = opts.maxBuffer ?? 256 * 2 ** 20;
  const what = `git ${args.join(' ')} in ${cwd}`;
  const r = await runGuarded(bin, ['-C', cwd, ...args], {
    maxBuffer: max + 1,
    env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  }).catch((e: Error) => Promise.reject(new SetupError(`${what} could not start: ${e.message}`)));
  if (r.code !== 0) {
    const said = r.stderr.toString('utf8').trim();
    throw new SetupError(`${what} failed: ${said || (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`)}`);
  }
  if (r.stdout.length > max) throw new SetupError(`${what}: its output is larger than ${max} bytes`);
  return r.stdout.toString('utf8');
}

export function checkKernelTree(tree: string, spec: string): void {
  const st = statSync(tree, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new UsageError(`kernel "${spec}": ${tree} is not a folder. Give the path of a kernel source tree.`);
  for (const f of ['Makefile', 'Kconfig', 'init/main.c']) {
    if (!existsSync(path.join(tree, f))) throw new UsageError(`kernel "${spec}": ${tree} is not a kernel source tree (it has no ${f}).`);
  }
}

async function isGitTree(tree: string): Promise<boolean> {
  return git(tree, ['rev-parse', '--is-inside-work-tree']).then(
    (o) => o.trim() === 'true',
    () => false,
  );
}

/** What the work tree is now: HEAD, the diff against it, the untracked files: the cache key's part. */
async function worktreeState(tree: string): Promise<string> {
  const head = (await git(tree, ['rev-parse', 'HEAD'])).trim();
  const diff = await git(tree, ['diff', 'HEAD', '--binary', '--no-ext-diff']);
  const others = (await git(tree, ['ls-files', '--others', '--exclude-standard', '-z'])).split('\0').filter(Boolean).sort();
  const h = createHash('sha256').update(head).update('\0').update(diff);
  for (const f of others) {
    h.update('\0').update(f).update('\0');
    const p = path.join(tree, f);
    if (statSync(p, { throwIfNoEntry: false })?.isFile()) h.update(await fs.readFile(p));
  }
  return `${head.slice(0, 12)}-${h.digest('hex').slice(0, 12)}`;
}

function treeHome(tree: string): string {
  return path.join(cacheRoot(), 'git', createHash('sha256').update(path.resolve(tree)).digest('hex').slice(0, 16));
}

/**
 * rootprobe's own clone of the user's repository (objects shared, nothing written there),
 * with `rev` checked out; returns the clone's path and the commit.
 */
export async function checkoutRevision(repo: string, rev: string, progress: Progress): Promise<{ tree: string; commit: string }> {
  const commit = (await git(repo, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]).catch(() => '')).trim();
  if (!commit) throw new UsageError(`kernel git:${repo}@${rev}: no such revision in ${repo}`);
  const top = (await git(repo, ['rev-parse', '--show-toplevel'])).trim();
  const home = treeHome(top);
  const clone = path.join(home, 'src');
  await fs.mkdir(home, { recursive: true });
  await withLock(path.join(home, 'src.lock'), async () => {
    if (!existsSync(path.join(clone, '.git'))) {
      progress(`cloning ${top} (objects shared) into the cache`);
      await fs.rm(clone, { recursive: true, force: true });
      const tmp = `${clone}.tmp-${process.pid}`;
      await fs.rm(tmp, { recursive: true, force: true });
      await git(home, ['clone', '--quiet', '--shared', '--no-checkout', top, tmp]);
      await fs.rename(tmp, clone);
    }
    // The revision may be newer than the clone: fetch it by its commit from the user's repo.
    const have = await git(clone, ['cat-file', '-e', `${commit}^{commit}`]).then(
      () => true,
      () => false,
    );
    if (!have) await git(clone, ['fetch', '--quiet', '--no-tags', top, commit]);
    progress(`checking out ${rev} (${commit.slice(0, 12)})`);
    await git(clone, ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--force', '--detach', commit]);
    await git(clone, ['clean', '--quiet', '-fdx']);
  });
  return { tree: clone, commit };
}

export async function resolveGitKernel(spec: GitSpec, onProgress?: Progress): Promise<Kernel> {
  const progress: Progress = onProgress ?? (() => {});
  checkKernelTree(spec.path, spec.id);
  buildTools(`to build ${spec.id}`);
  const gitTree = await isGitTree(spec.path);
  if (spec.rev && !gitTree)
    throw new UsageError(`kernel "${spec.id}": ${spec.path} is not a git work tree, so it has no revision ${spec.rev}`);
  let tree = spec.path;
  let state: string | undefined;
  let commit: string | undefined;
  if (spec.rev) {
    const c = await checkoutRevision(spec.path, spec.rev, progress);
    tree = c.tree;
    commit = c.commit;
    state = c.commit.slice(0, 12);
  } else if (gitTree) {
    state = await worktreeState(spec.path);
    commit = (await git(spec.path, ['rev-parse', 'HEAD'])).trim();
  }
  const arch = archByName(spec.extras.arch);
  const fragments = [
    { name: 'base.config', text: await fs.readFile(path.join(RECIPES_DIR, 'base.config'), 'utf8') },
    await archFragment(arch),
    ...extraFragments(spec.extras),
  ];
  const configInputs = contentHash({
    builder: BUILDER_VERSION,
    arch: arch.name,
    fragments,
    config: spec.extras.config ? await fs.readFile(spec.extras.config, 'utf8') : (spec.extras.base ?? 'tinyconfig'),
  }).slice(0, 12);
  const home = treeHome(gitTree ? (await git(spec.path, ['rev-parse', '--show-toplevel'])).trim() : spec.path);
  const buildDir = path.join(home, `build-${spec.rev ? 'rev' : 'wt'}${arch.name !== DEFAULT_ARCH ? `-${arch.name}` : ''}-${configInputs}`);
  const label = path.basename(spec.path);
  // A tree whose state is known (git) is cached by it; any other is built every time (make is incremental).
  const key = `git-${label.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40)}-${state ?? 'nogit'}-${configInputs}`;
  if (!state) await fs.rm(path.join(cacheRoot(), 'kernels', key), { recursive: true, force: true });
  const dir = await cachedEntry(
    'kernels',
    key,
    async (entry) => {
      await withLock(`${buildDir}.lock`, async () => {
        const logFile = path.join(entry, 'build.log');
        const log = await fs.open(logFile, 'w');
        try {
          const built = await kbuild({
            tree,
            outDir: buildDir,
            base: spec.extras.config ? { file: spec.extras.config } : { target: spec.extras.base ?? 'tinyconfig' },
            fragments,
            what: `kernel ${spec.id}`,
            log,
            env: buildEnv(`rootprobe ${label} ${state ?? ''}`),
            progress,
            arch,
          });
          const image = arch.kernelImage;
          await fs.copyFile(built.image, path.join(entry, image));
          await fs.writeFile(path.join(entry, 'config'), built.configText);
          const subject = commit ? (await git(tree, ['log', '-1', '--format=%s', commit])).trim() : undefined;
          // An https remote of the user's repository names the tree for KernelCI (KCIDB takes https only).
          const remote = gitTree ? (await git(spec.path, ['config', '--get', 'remote.origin.url']).catch(() => '')).trim() : '';
          const remoteUrl = /^https:\/\//.test(remote) ? remote : undefined;
          await fs.writeFile(
            path.join(entry, 'kernel.json'),
            JSON.stringify(
              {
                id: spec.id,
                release: built.release,
                vmlinuz: image,
                ...(arch.name !== DEFAULT_ARCH ? { arch: arch.name } : {}),
                configPath: 'config',
                description: `${spec.id}: ${commit ? `${commit.slice(0, 12)} ${subject}` : 'a source tree'}${commit && !spec.rev ? ' (the work tree as it is)' : ''}`,
                sha256: createHash('sha256')
                  .update(await fs.readFile(path.join(entry, image)))
                  .digest('hex'),
                git: commit
                  ? { tree: spec.path, commit, subject, rev: spec.rev ?? 'work tree', ...(remoteUrl ? { remoteUrl } : {}) }
                  : undefined,
                ...(built.vmlinux ? { vmlinux: built.vmlinux } : {}),
                buildDir,
                steps: built.steps,
                buildSeconds: built.seconds,
              },
              null,
              1,
            ),
          );
          progress(`built ${spec.id} (${built.release}) in ${built.seconds} s, ${built.steps} make steps`);
        } catch (e) {
          await log.close().catch(() => undefined);
          const kept = path.join(home, 'build.failed.log');
          await fs.copyFile(logFile, kept).catch(() => undefined);
          if (e instanceof BuildStepError) throw new SetupError(`kernel ${spec.id}: ${e.message}\n  the whole log: ${kept}`);
          throw e;
        } finally {
          await log.close().catch(() => undefined);
        }
      });
    },
    { onWait: () => progress(`waiting for another rootprobe that is building ${key}`) },
  );
  // The same tree state built under another name (a tag, a commit) is the same kernel; it takes the name asked for.
  return { ...(await loadKernelEntry(dir)), id: spec.id };
}

export { extrasSuffix };
