/**
 * How a boot ended, from what was seen while it ran: QEMU's exit (code or signal) or its
 * failure to start, a panic line on the console, the deadline, a stop (stop(), the abort
 * signal, a host write error, a handler that threw), the result channel closing. Pure: the
 * runner records the events in the order they happen, and the ending is a function of that
 * record, so it can be tested on recorded events without QEMU.
 *
 * The rules, in order:
 *   - QEMU failed to start: `spawn-error`, whatever else happened;
 *   - a panic line, when no other end was asked for before it (a panic seen only as the
 *     console is flushed after QEMU exited counts too): `panic`;
 *   - the first end asked for before QEMU exited (panic, deadline, stop): that end, a stop
 *     with its reason; one asked for after QEMU exited comes too late and does not count;
 *   - QEMU killed by a signal nobody asked for: `signal`;
 *   - else QEMU exited by itself: `exited`.
 * The result channel closing ends nothing: QEMU closes it when it exits, and a guest may
 * close its end and still hang (then the deadline ends the boot).
 */

export type BootEnd = 'exited' | 'panic' | 'deadline' | 'stopped' | 'signal' | 'spawn-error';

export type BootEvent =
  /** QEMU is gone (its stdio closed, or its spawn failed). */
  | { kind: 'exit'; exitCode: number | null; signal: string | null }
  | { kind: 'spawn-error'; message: string }
  /** The console's first 'Kernel panic - not syncing' line. */
  | { kind: 'panic'; line: string }
  | { kind: 'deadline' }
  | { kind: 'stop'; reason: string }
  | { kind: 'result-closed' };

/** The events that ask for the boot to end (and QEMU to be ended). */
export type EndRequest = Extract<BootEvent, { kind: 'panic' | 'deadline' | 'stop' }>;

export interface BootEnding {
  end: BootEnd;
  exitCode: number | null;
  signal: string | null;
  /** The first panic line, whenever it came. */
  panicLine?: string;
  /** Why the boot was stopped, when end = 'stopped'. */
  stopReason?: string;
}

function isRequest(ev: BootEvent): ev is EndRequest {
  return ev.kind === 'panic' || ev.kind === 'deadline' || ev.kind === 'stop';
}

/** The first end asked for before QEMU exited, if any. */
export function firstRequest(events: readonly BootEvent[]): EndRequest | undefined {
  for (const ev of events) {
    if (ev.kind === 'exit') return undefined;
    if (isRequest(ev)) return ev;
  }
  return undefined;
}

/** How the boot ended; `events` must hold QEMU's exit. */
export function bootEnding(events: readonly BootEvent[]): BootEnding {
  const exit = events.find((ev) => ev.kind === 'exit');
  if (!exit) throw new Error('internal: a boot ending asked for before QEMU exited');
  const panic = events.find((ev) => ev.kind === 'panic');
  const request = firstRequest(events);
  let end: BootEnd;
  if (events.some((ev) => ev.kind === 'spawn-error')) end = 'spawn-error';
  else if (panic && (!request || request.kind === 'panic')) end = 'panic';
  else if (request) end = request.kind === 'stop' ? 'stopped' : request.kind;
  else if (exit.signal !== null) end = 'signal';
  else end = 'exited';
  return {
    end,
    exitCode: exit.exitCode,
    signal: exit.signal,
    ...(panic ? { panicLine: panic.line } : {}),
    ...(end === 'stopped' ? { stopReason: (request as { reason: string }).reason } : {}),
  };
}

/** The message of an AbortSignal's reason, as a stop reason. */
export function abortReason(reason: unknown): string {
  return reason instanceof Error ? reason.message : reason !== undefined ? String(reason) : 'aborted';
}

/**
 * The record of one boot's events, kept by the runner. `record` says when an event is the
 * first request to end the boot: the moment the runner must end QEMU.
 */
export class BootEvents {
  readonly events: BootEvent[] = [];

  /** Adds an event; true when it is the first end asked for while QEMU runs. */
  record(ev: BootEvent): boolean {
    const first = isRequest(ev) && !this.settled;
    this.events.push(ev);
    return first;
  }

  /** QEMU exited or an end was asked for: nothing new should start (a socket connection). */
  get settled(): boolean {
    return this.exited || firstRequest(this.events) !== undefined;
  }

  get exited(): boolean {
    return this.events.some((ev) => ev.kind === 'exit');
  }

  ending(): BootEnding {
    return bootEnding(this.events);
  }
}
