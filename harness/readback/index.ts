/** Readback: the host side of the result channel (docs/protocol.md). */
export {
  FrameDecoder,
  encodeFrame,
  decodeFrames,
  isStageName,
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  type FrameEvent,
  type DamagedFrameEvent,
  type NoiseEvent,
  type ReadbackEvent,
  type DamageReason,
  type FrameDecoderOptions,
} from './frame.ts';
export {
  Mountinfo,
  MountinfoParseError,
  parseMountinfo,
  parseMountinfoLine,
  unescapeMountinfo,
  propagationOf,
  parseOptions,
  type MountinfoEntry,
  type Propagation,
} from './mountinfo.ts';
export { parseLink, DELETED_SUFFIX, UNREACHABLE_PREFIX, type LinkText } from './links.ts';
export {
  Stage,
  parseSnapshot,
  SnapshotError,
  formatProcessTable,
  markProbeProcesses,
  linkFacts,
  stageOfProcess,
  contextOfMount,
  adoptMountinfo,
  type ProcessInfo,
  type CommandResult,
  type StageJSON,
} from './snapshot.ts';
export { RunReadback, readRunStream, type RunReadbackJSON, type UnreadableSnapshot } from './result.ts';
