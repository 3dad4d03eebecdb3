/**
 * Everything one boot reported on its result channel: the stages in the order they arrived,
 * plus the frames that arrived damaged or could not be read as snapshots.
 */
import { FrameDecoder, type DamagedFrameEvent, type ReadbackEvent } from './frame.ts';
import { parseSnapshot, Stage, type StageJSON } from './snapshot.ts';

/** A frame that arrived intact but whose payload is not a valid snapshot. */
export interface UnreadableSnapshot {
  stage: string;
  error: string;
}

export interface RunReadbackJSON {
  stages: StageJSON[];
  damaged: DamagedFrameEvent[];
  unreadable: UnreadableSnapshot[];
}

export class RunReadback {
  private readonly list: Stage[] = [];
  readonly damaged: DamagedFrameEvent[] = [];
  readonly unreadable: UnreadableSnapshot[] = [];

  add(stage: Stage): this {
    this.list.push(stage);
    return this;
  }

  /**
   * Take one decoder event: a frame is parsed and added as a stage (or recorded as unreadable,
   * also when its meta names another stage than its frame), a damaged frame is recorded, noise
   * is ignored. Returns the stage added, if any. Await each call before the next to keep order.
   */
  async addEvent(ev: ReadbackEvent): Promise<Stage | undefined> {
    if (ev.kind === 'damaged') this.damaged.push(ev);
    if (ev.kind !== 'frame') return undefined;
    try {
      const stage = await parseSnapshot(ev.payload);
      if (stage.name !== ev.stage) {
        throw new Error(`the frame is named ${JSON.stringify(ev.stage)} but its meta says stage=${stage.name}`);
      }
      this.add(stage);
      return stage;
    } catch (e) {
      this.unreadable.push({ stage: ev.stage, error: (e as Error).message });
      return undefined;
    }
  }

  /** All stages in arrival order (a name may occur twice). */
  get stages(): readonly Stage[] {
    return this.list;
  }

  /** The stage that arrived last, if any. */
  get last(): Stage | undefined {
    return this.list[this.list.length - 1];
  }

  /** Names of the stages that reported, in arrival order. */
  get names(): string[] {
    return this.list.map((s) => s.name);
  }

  has(name: string): boolean {
    return this.list.some((s) => s.name === name);
  }

  /** True if the guest sent its final `done` stage. */
  get done(): boolean {
    return this.has('done');
  }

  /** The last stage with this name; throws an Error naming the stages that did report. */
  stage(name: string): Stage {
    for (let i = this.list.length - 1; i >= 0; i--) if (this.list[i]!.name === name) return this.list[i]!;
    throw new Error(`stage ${JSON.stringify(name)} never reported; ${this.describeReported()}`);
  }

  /** Every stage with this name, in arrival order. */
  stagesNamed(name: string): Stage[] {
    return this.list.filter((s) => s.name === name);
  }

  /** "stages that reported: a, b" plus any damaged or unreadable frames, for failure messages. */
  describeReported(): string {
    const parts = [this.list.length === 0 ? 'no stage reported' : `stages that reported: ${this.names.join(', ')}`];
    for (const d of this.damaged) parts.push(`damaged frame of stage ${JSON.stringify(d.stage)} (${d.reason}: ${d.detail})`);
    for (const u of this.unreadable) parts.push(`unreadable snapshot of stage ${JSON.stringify(u.stage)} (${u.error})`);
    return parts.join('; ');
  }

  toJSON(): RunReadbackJSON {
    return {
      stages: this.list.map((s) => s.toJSON()),
      damaged: this.damaged.map((d) => ({ ...d })),
      unreadable: this.unreadable.map((u) => ({ ...u })),
    };
  }

  static fromJSON(json: RunReadbackJSON): RunReadback {
    const r = new RunReadback();
    for (const s of json.stages) r.add(Stage.fromJSON(s));
    r.damaged.push(...(json.damaged ?? []).map((d) => ({ ...d })));
    r.unreadable.push(...(json.unreadable ?? []).map((u) => ({ ...u })));
    return r;
  }
}

/**
 * Read a whole recorded result stream (the bytes that came out of ttyS1): decode frames, parse
 * each payload as a snapshot. Noise lines are returned for the artifact folder, not judged.
 */
export async function readRunStream(stream: Buffer | string): Promise<{ readback: RunReadback; noise: string[] }> {
  const decoder = new FrameDecoder();
  const events: ReadbackEvent[] = [...decoder.push(stream), ...decoder.end()];
  const readback = new RunReadback();
  const noise: string[] = [];
  for (const ev of events) {
    if (ev.kind === 'noise') noise.push(ev.line);
    else await readback.addEvent(ev);
  }
  return { readback, noise };
}
