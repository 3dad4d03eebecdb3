/**
 * The options of the library's boot(scenario, options), checked before anything is resolved or
 * booted (harness/boot-options.ts): a misspelt key is an error naming it and the nearest known
 * one, a value of the wrong type one naming the key. Nothing here boots: boot() is only called
 * with a kernel that cannot resolve, so that a check that did not happen fails differently.
 */
import { expect } from 'chai';
import { checkBootOptions } from '../harness/boot-options.ts';
import { UsageError } from '../harness/errors.ts';
import { boot } from '../harness/index.ts';
import switchRoot from '../scenarios/switch_root/scenario.ts';

const problem = (options: unknown): string => {
  try {
    checkBootOptions(options);
  } catch (e) {
    expect(e).to.be.instanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
};

describe('boot(scenario, options): the options are checked', () => {
  it('a misspelt key names itself and the nearest known key', () => {
    expect(problem({ kernal: 'debian/bookworm' })).to.equal('boot(scenario, options): `kernal`: unknown option; did you mean `kernel`?');
    expect(problem({ artifactRoot: '/tmp/a' })).to.include('`artifactRoot`: unknown option; did you mean `artifactsRoot`?');
    expect(problem({ extraCmdLine: 'quiet' })).to.include('did you mean `extraCmdline`?');
    expect(problem({ firmwear: 'uefi' })).to.include('did you mean `firmware`?');
  });

  it('a key near none of them lists the known ones', () => {
    expect(problem({ accelerator: 'kvm' })).to.equal(
      'boot(scenario, options): `accelerator`: unknown option (known: kernel, artifactsRoot, keep, extraCmdline, onEvent, signal, firmware, boot)',
    );
  });

  it('a value of the wrong type names the key and what it takes; all problems at once', () => {
    expect(problem({ keep: 'yes' })).to.equal('boot(scenario, options): `keep`: must be true or false (got the string "yes")');
    expect(problem({ firmware: 'efi' })).to.include("`firmware`: must be 'bios', 'uefi' (got the string \"efi\")");
    expect(problem({ onEvent: 'log' })).to.include('`onEvent`: must be a function');
    const many = problem({ kernal: 'x', keep: 1, signal: {} });
    expect(many).to.match(/^boot\(scenario, options\): 3 problems:\n/);
    expect(many).to.include('`kernal`').and.include('`keep`').and.include('`signal`: must be an AbortSignal');
    expect(problem(['debian/bookworm'])).to.include('options must be an object (got a list)');
  });

  it('right options pass as they are, the same function and signal', () => {
    const onEvent = (): void => {};
    const signal = new AbortController().signal;
    const ok = checkBootOptions({ kernel: 'debian/trixie', keep: true, onEvent, signal, firmware: 'uefi', boot: 'uki' });
    expect(ok).to.include({ kernel: 'debian/trixie', keep: true, onEvent, signal, firmware: 'uefi', boot: 'uki' });
    expect(checkBootOptions(undefined)).to.deep.equal({});
    expect(checkBootOptions({})).to.deep.equal({});
  });

  it('boot() itself refuses a misspelt key before it resolves any kernel', async () => {
    // were the key ignored, the file: kernel would fail to resolve with another message
    const opts = { kernel: 'file:/nonexistent/rootprobe-test/bzImage', kernal: 'debian/bookworm' } as Parameters<typeof boot>[1];
    const err = await boot(switchRoot, opts).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).to.be.instanceOf(UsageError);
    expect(err?.message).to.include('`kernal`: unknown option; did you mean `kernel`?');
  });
});
