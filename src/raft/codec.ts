// RaftMessage (machines/protocol.ts) <-> the plain objects of proto/raft.proto as @grpc/proto-loader
// produces them (keepCase, longs as Number, enums as String, oneofs: see src/proto.ts).
//
// decode() is the trust boundary for bytes from the network: it checks every field a machine relies on
// and throws CodecError on anything malformed, so the service can refuse the whole batch before any of
// it is delivered.

import type { ClusterConfig, Entry, EntryKind, Member, RaftMessage } from '../../machines/protocol.js';

export class CodecError extends Error {}

/** The wire shape of one RaftMessage (a loose type: proto-loader hands us plain objects). */
export type WireMessage = Record<string, unknown>;

const kindToWire: Record<EntryKind, string> = {
  noop: 'ENTRY_KIND_NOOP',
  command: 'ENTRY_KIND_COMMAND',
  config: 'ENTRY_KIND_CONFIG',
};
const kindFromWire: Record<string, EntryKind> = {
  ENTRY_KIND_NOOP: 'noop',
  ENTRY_KIND_COMMAND: 'command',
  ENTRY_KIND_CONFIG: 'config',
};

function configToWire(config: ClusterConfig): WireMessage {
  return { members: config.members.map((m) => ({ id: m.id, address: m.address, voter: m.voter })) };
}

export function encode(m: RaftMessage): WireMessage {
  const env = { from: m.from, to: m.to, term: m.term };
  switch (m.type) {
    case 'RequestVote':
      return {
        ...env,
        request_vote: {
          last_log_index: m.lastLogIndex,
          last_log_term: m.lastLogTerm,
          pre_vote: m.preVote,
          transfer: m.transfer,
        },
      };
    case 'RequestVoteResponse':
      return { ...env, request_vote_response: { granted: m.granted, pre_vote: m.preVote } };
    case 'AppendEntries':
      return {
        ...env,
        append_entries: {
          prev_log_index: m.prevLogIndex,
          prev_log_term: m.prevLogTerm,
          entries: m.entries.map((e) => ({
            index: e.index,
            term: e.term,
            kind: kindToWire[e.kind],
            data: e.data,
          })),
          leader_commit: m.leaderCommit,
          read_round: m.readRound,
        },
      };
    case 'AppendEntriesResponse':
      return {
        ...env,
        append_entries_response: {
          success: m.success,
          match_index: m.matchIndex,
          conflict_index: m.conflictIndex,
          conflict_term: m.conflictTerm,
          read_round: m.readRound,
        },
      };
    case 'InstallSnapshot':
      return {
        ...env,
        install_snapshot: {
          last_included_index: m.lastIncludedIndex,
          last_included_term: m.lastIncludedTerm,
          config: configToWire(m.config),
          offset: m.offset,
          chunk: Buffer.from(m.chunk, 'base64'),
          done: m.done,
        },
      };
    case 'InstallSnapshotResponse':
      return {
        ...env,
        install_snapshot_response: {
          last_included_index: m.lastIncludedIndex,
          next_offset: m.nextOffset,
          installed: m.installed,
        },
      };
    case 'TimeoutNow':
      return { ...env, timeout_now: {} };
    case 'ReadIndexRequest':
      return { ...env, read_index_request: { request_ids: m.requestIds } };
    case 'ReadIndexResponse':
      return {
        ...env,
        read_index_response: { request_ids: m.requestIds, ok: m.ok, index: m.index },
      };
  }
}

// --- decoding ---------------------------------------------------------------------------------------

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new CodecError(`${what} is missing`);
  return v as Record<string, unknown>;
}

function uint(o: Record<string, unknown>, key: string): number {
  const v = o[key] ?? 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new CodecError(`${key} is not a non-negative safe integer`);
  }
  return v;
}

function bool(o: Record<string, unknown>, key: string): boolean {
  const v = o[key] ?? false;
  if (typeof v !== 'boolean') throw new CodecError(`${key} is not a boolean`);
  return v;
}

function str(o: Record<string, unknown>, key: string): string {
  const v = o[key] ?? '';
  if (typeof v !== 'string') throw new CodecError(`${key} is not a string`);
  return v;
}

/** A list of request ids: bounded, so one message cannot make the receiver hold an unbounded batch. */
function strings(o: Record<string, unknown>, key: string): string[] {
  const v = o[key] ?? [];
  if (!Array.isArray(v) || v.length > MAX_READ_IDS) throw new CodecError(`${key} is not a list of ids`);
  return v.map((x) => {
    if (typeof x !== 'string' || x.length === 0 || x.length > 128)
      throw new CodecError(`${key} holds a bad id`);
    return x;
  });
}

const MAX_READ_IDS = 10_000;

function configFromWire(v: unknown): ClusterConfig {
  if (v === null || v === undefined) return { members: [] };
  const members = obj(v, 'config').members ?? [];
  if (!Array.isArray(members)) throw new CodecError('config.members is not a list');
  return {
    members: members.map((raw): Member => {
      const m = obj(raw, 'member');
      const id = str(m, 'id');
      if (id === '') throw new CodecError('a member has an empty id');
      return { id, address: str(m, 'address'), voter: bool(m, 'voter') };
    }),
  };
}

function entryFromWire(raw: unknown): Entry {
  const e = obj(raw, 'entry');
  const kind = kindFromWire[String(e.kind ?? 'ENTRY_KIND_NOOP')];
  if (!kind) throw new CodecError(`unknown entry kind ${String(e.kind)}`);
  return { index: uint(e, 'index'), term: uint(e, 'term'), kind, data: str(e, 'data') };
}

function chunkFromWire(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  throw new CodecError('chunk is not bytes');
}

/** Decode one wire message; throws CodecError when it is malformed. */
export function decode(raw: unknown): RaftMessage {
  const w = obj(raw, 'message');
  const from = str(w, 'from');
  const to = str(w, 'to');
  if (from === '' || to === '') throw new CodecError('from and to must be set');
  const env = { from, to, term: uint(w, 'term') };
  const body = w.body;
  if (typeof body !== 'string') throw new CodecError('the message has no body');
  const b = obj(w[body], body);
  switch (body) {
    case 'request_vote':
      return {
        type: 'RequestVote',
        ...env,
        lastLogIndex: uint(b, 'last_log_index'),
        lastLogTerm: uint(b, 'last_log_term'),
        preVote: bool(b, 'pre_vote'),
        transfer: bool(b, 'transfer'),
      };
    case 'request_vote_response':
      return {
        type: 'RequestVoteResponse',
        ...env,
        granted: bool(b, 'granted'),
        preVote: bool(b, 'pre_vote'),
      };
    case 'append_entries': {
      const entries = b.entries ?? [];
      if (!Array.isArray(entries)) throw new CodecError('entries is not a list');
      const prevLogIndex = uint(b, 'prev_log_index');
      const decoded = entries.map(entryFromWire);
      // The machines rely on consecutive entries right after prevLogIndex; refuse anything else here.
      decoded.forEach((e, i) => {
        if (e.index !== prevLogIndex + 1 + i)
          throw new CodecError('entries are not consecutive after prev_log_index');
      });
      return {
        type: 'AppendEntries',
        ...env,
        prevLogIndex,
        prevLogTerm: uint(b, 'prev_log_term'),
        entries: decoded,
        leaderCommit: uint(b, 'leader_commit'),
        readRound: uint(b, 'read_round'),
      };
    }
    case 'append_entries_response':
      return {
        type: 'AppendEntriesResponse',
        ...env,
        success: bool(b, 'success'),
        matchIndex: uint(b, 'match_index'),
        conflictIndex: uint(b, 'conflict_index'),
        conflictTerm: uint(b, 'conflict_term'),
        readRound: uint(b, 'read_round'),
      };
    case 'install_snapshot':
      return {
        type: 'InstallSnapshot',
        ...env,
        lastIncludedIndex: uint(b, 'last_included_index'),
        lastIncludedTerm: uint(b, 'last_included_term'),
        config: configFromWire(b.config),
        offset: uint(b, 'offset'),
        chunk: chunkFromWire(b.chunk),
        done: bool(b, 'done'),
      };
    case 'install_snapshot_response':
      return {
        type: 'InstallSnapshotResponse',
        ...env,
        lastIncludedIndex: uint(b, 'last_included_index'),
        nextOffset: uint(b, 'next_offset'),
        installed: bool(b, 'installed'),
      };
    case 'timeout_now':
      return { type: 'TimeoutNow', ...env };
    case 'read_index_request':
      return { type: 'ReadIndexRequest', ...env, requestIds: strings(b, 'request_ids') };
    case 'read_index_response':
      return {
        type: 'ReadIndexResponse',
        ...env,
        requestIds: strings(b, 'request_ids'),
        ok: bool(b, 'ok'),
        index: uint(b, 'index'),
      };
    default:
      throw new CodecError(`unknown message body ${body}`);
  }
}

/** Rough wire size of a message, for bounding batches (exact size would cost an encode). */
export function approxSize(m: RaftMessage): number {
  if (m.type === 'AppendEntries') {
    let n = 64;
    for (const e of m.entries) n += 24 + e.data.length;
    return n;
  }
  if (m.type === 'InstallSnapshot') return 64 + (m.chunk.length * 3) / 4 + m.config.members.length * 48;
  if (m.type === 'ReadIndexRequest' || m.type === 'ReadIndexResponse') return 64 + m.requestIds.length * 24;
  return 64;
}
