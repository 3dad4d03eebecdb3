/**
 * How a boot ended (harness/qemu/ending.ts), on recorded events without QEMU: every ending
 * kind, and which one wins when several things happen.
 */
import { expect } from 'chai';
import { abortReason, BootEvents, bootEnding, firstRequest, type BootEvent } from '../harness/qemu/ending.ts';

const PANIC = 'Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000';
const exit = (exitCode: number | null = 0, signal: string | null = null): BootEvent => ({ kind: 'exit', exitCode, signal });
const panic: BootEvent = { kind: 'panic', line: PANIC };
const deadline: BootEvent = { kind: 'deadline' };
const stop = (reason: string): BootEvent => ({ kind: 'stop', reason });
const closed: BootEvent = { kind: 'result-closed' };

describe('how a boot ended (harness/qemu/ending.ts)', () => {
  describe('each ending alone', () => {
    it('QEMU exits by itself: exited, with its code', () => {
      expect(bootEnding([closed, exit(0)])).to.deep.equal({ end: 'exited', exitCode: 0, signal: null });
      expect(bootEnding([exit(1)])).to.deep.equal({ end: 'exited', exitCode: 1, signal: null });
    });

    it('QEMU killed by a signal nobody asked for: signal', () => {
      expect(bootEnding([exit(null, 'SIGKILL'), closed])).to.deep.equal({ end: 'signal', exitCode: null, signal: 'SIGKILL' });
    });

    it('a panic line: panic, with the line', () => {
      expect(bootEnding([panic, closed, exit(0)])).to.deep.equal({ end: 'panic', exitCode: 0, signal: null, panicLine: PANIC });
    });

    it('the deadline: deadline, though QEMU was then killed by a signal', () => {
      expect(bootEnding([deadline, exit(null, 'SIGTERM')])).to.deep.equal({ end: 'deadline', exitCode: null, signal: 'SIGTERM' });
    });

    it('a stop: stopped, with its reason', () => {
      expect(bootEnding([stop('test stops it'), exit(null, 'SIGTERM')])).to.deep.equal({
        end: 'stopped',
        exitCode: null,
        signal: 'SIGTERM',
        stopReason: 'test stops it',
      });
    });

    it('QEMU failed to start: spawn-error', () => {
      expect(bootEnding([{ kind: 'spawn-error', message: 'ENOENT' }, exit(null)]).end).to.equal('spawn-error');
    });

    it('no ending before QEMU exited', () => {
      expect(() => bootEnding([panic, deadline])).to.throw(/before QEMU exited/);
    });
  });

  describe('precedence when several things happen', () => {
    it('a panic, then QEMU exits on its own (panic=-1) or is killed after the grace: panic', () => {
      expect(bootEnding([panic, exit(0)]).end).to.equal('panic');
      expect(bootEnding([panic, exit(null, 'SIGKILL')]).end).to.equal('panic');
    });

    it('a panic seen only when the console is flushed after QEMU exited: still panic', () => {
      expect(bootEnding([exit(0), panic])).to.deep.equal({ end: 'panic', exitCode: 0, signal: null, panicLine: PANIC });
    });

    it('a panic while a deadline is ending QEMU: deadline, the panic line kept', () => {
      expect(bootEnding([deadline, panic, exit(null, 'SIGTERM')])).to.deep.equal({
        end: 'deadline',
        exitCode: null,
        signal: 'SIGTERM',
        panicLine: PANIC,
      });
    });

    it('a panic after a stop: stopped with the first reason, the panic line kept', () => {
      const e = bootEnding([stop('first'), panic, stop('second'), exit(null, 'SIGTERM')]);
      expect(e.end).to.equal('stopped');
      expect(e.stopReason).to.equal('first');
      expect(e.panicLine).to.equal(PANIC);
    });

    it('a panic, then the deadline or a stop while QEMU dies: panic', () => {
      expect(bootEnding([panic, deadline, exit(null, 'SIGKILL')]).end).to.equal('panic');
      expect(bootEnding([panic, stop('late'), exit(null, 'SIGKILL')])).to.not.have.property('stopReason');
    });

    it('the deadline after the result stream closed: deadline (a closed channel ends nothing)', () => {
      expect(bootEnding([closed, deadline, exit(null, 'SIGTERM')]).end).to.equal('deadline');
    });

    it('the first of deadline and stop wins', () => {
      expect(bootEnding([deadline, stop('x'), exit(null, 'SIGTERM')]).end).to.equal('deadline');
      expect(bootEnding([stop('x'), deadline, exit(null, 'SIGTERM')]).end).to.equal('stopped');
    });

    it('a stop or deadline after QEMU exited comes too late: exited or signal', () => {
      expect(bootEnding([exit(0), stop('late'), deadline])).to.deep.equal({ end: 'exited', exitCode: 0, signal: null });
      expect(bootEnding([exit(null, 'SIGKILL'), stop('late')]).end).to.equal('signal');
    });

    it('a failed spawn wins over everything', () => {
      const spawn: BootEvent = { kind: 'spawn-error', message: 'EACCES' };
      expect(bootEnding([panic, spawn, exit(null)]).end).to.equal('spawn-error');
      expect(bootEnding([stop('x'), spawn, exit(null)]).end).to.equal('spawn-error');
    });
  });

  it('firstRequest: the first panic, deadline or stop before the exit', () => {
    expect(firstRequest([closed, deadline, panic, exit()])).to.deep.equal(deadline);
    expect(firstRequest([closed, exit(), stop('late')])).to.equal(undefined);
  });

  it('abortReason: an Error gives its message, anything else its string, nothing "aborted"', () => {
    expect(abortReason(new Error('user pressed q'))).to.equal('user pressed q');
    expect(abortReason('SIGINT')).to.equal('SIGINT');
    expect(abortReason(undefined)).to.equal('aborted');
  });

  describe('BootEvents: the runner ends QEMU on the first request only', () => {
    it('only the first end asked for while QEMU runs says to end QEMU', () => {
      const ev = new BootEvents();
      expect(ev.record(closed)).to.equal(false);
      expect(ev.settled).to.equal(false);
      expect(ev.record(deadline)).to.equal(true);
      expect(ev.settled).to.equal(true);
      expect(ev.record(stop('again'))).to.equal(false);
      expect(ev.record(panic)).to.equal(false);
      expect(ev.exited).to.equal(false);
      expect(ev.record(exit(null, 'SIGTERM'))).to.equal(false);
      expect(ev.exited).to.equal(true);
      expect(ev.ending().end).to.equal('deadline');
    });

    it('after the exit nothing asks to end QEMU, and the boot is settled', () => {
      const ev = new BootEvents();
      ev.record(exit(0));
      expect(ev.settled).to.equal(true);
      expect(ev.record(panic)).to.equal(false);
      expect(ev.record(stop('late'))).to.equal(false);
      expect(ev.ending().end).to.equal('panic');
    });

    it('a panic asks to end QEMU when it is the first request', () => {
      const ev = new BootEvents();
      expect(ev.record(panic)).to.equal(true);
    });
  });
});
