/** `file:<path>[,modules=<dir>,config=<file>]`: a kernel image of the user's (kernels/file.ts). */
import * as path from 'node:path';
import { UsageError } from '../../harness/errors.ts';
import { resolveFileKernel } from '../file.ts';
import type { KernelProvider } from '../provider.ts';

export interface FileSpec {
  kind: 'file';
  id: string;
  path: string;
  modules?: string;
  config?: string;
  [field: string]: unknown;
}

export const fileProvider: KernelProvider<FileSpec> = {
  kind: 'file',
  forms: ['file:<path-to-bzImage>[,modules=<lib/modules/release dir>][,config=<.config file>]'],
  summary: 'a kernel image of your own, with its modules folder and .config if it has them',
  claims: (s) => s.startsWith('file:'),
  parse(s) {
    const parts = s.slice('file:'.length).split(/,(?=(?:modules|config)=)/);
    const file = parts.shift() ?? '';
    if (!file) throw new UsageError(`kernel "${s}" names no file.`);
    const out: FileSpec = { kind: 'file', id: '', path: path.resolve(file) };
    for (const p of parts) {
      const eq = p.indexOf('=');
      const k = p.slice(0, eq) as 'modules' | 'config';
      const v = p.slice(eq + 1);
      if (!v) throw new UsageError(`kernel "${s}": ${k}= needs a path.`);
      if (out[k] !== undefined) throw new UsageError(`kernel "${s}": ${k}= given twice.`);
      out[k] = path.resolve(v);
    }
    out.id = `file:${out.path}${out.modules ? `,modules=${out.modules}` : ''}${out.config ? `,config=${out.config}` : ''}`;
    return out;
  },
  resolve: (k) => resolveFileKernel(k, k.id),
};
