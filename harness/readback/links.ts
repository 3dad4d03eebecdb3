/**
 * The text of a `/proc/<pid>/{exe,cwd,root}` or `fd/<n>` link, as the kernel's d_path writes it:
 *
 * - suffix ` (deleted)`: the file or directory was unlinked (e.g. the old root's `/init` after
 *   switch_root deleted the initramfs);
 * - prefix `(unreachable)`: the path lies outside the reader's root (e.g. a cwd left on the old
 *   root after pivot_root).
 *
 * Both can occur together: `(unreachable)/old (deleted)`. A path may contain spaces. The kernel
 * cannot tell a deleted `/x` from a live file named `/x (deleted)`; neither can we.
 */

export interface LinkText {
  /** The link text exactly as read. */
  text: string;
  /** The path with the decorations removed. */
  path: string;
  deleted: boolean;
  unreachable: boolean;
}

export const DELETED_SUFFIX = ' (deleted)';
export const UNREACHABLE_PREFIX = '(unreachable)';

export function parseLink(text: string): LinkText {
  let path = text;
  const unreachable = path.startsWith(UNREACHABLE_PREFIX);
  if (unreachable) path = path.slice(UNREACHABLE_PREFIX.length);
  const deleted = path.endsWith(DELETED_SUFFIX);
  if (deleted) path = path.slice(0, -DELETED_SUFFIX.length);
  return { text, path, deleted, unreachable };
}
