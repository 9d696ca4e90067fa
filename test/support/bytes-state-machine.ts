// A state machine whose snapshot is arbitrary bytes: a binary encoding of the commands it applied,
// followed by every byte value 0..255 several times over. Raft-level tests use it to show that
// src/raft/ treats a snapshot as opaque bytes (no text, no SQL, no chat types): whatever the state
// machine writes comes back to its restore() unchanged, through chunked transfers and crashes.

import * as fs from 'node:fs';
import type { Entry } from '../../machines/protocol.js';
import type {
  ApplyOutcome,
  SnapshotPayload,
  SnapshotSource,
  SnapshotToOptions,
  SnapshotWritten,
  StateMachine,
} from '../../src/raft/interfaces.js';

/** Every byte value, so a transfer that mangles any of them (text decoding, NULs) shows. */
const NOISE = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);

export function encodeState(index: number, data: string[]): Uint8Array {
  const parts = data.map((d) => Buffer.from(d, 'utf8'));
  const size = 8 + 4 + parts.reduce((n, p) => n + 4 + p.length, 0) + NOISE.length;
  const out = Buffer.alloc(size);
  out.writeBigUInt64BE(BigInt(index), 0);
  out.writeUInt32BE(parts.length, 8);
  let at = 12;
  for (const p of parts) {
    out.writeUInt32BE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  out.set(NOISE, at);
  return out;
}

export function decodeState(bytes: Uint8Array): { index: number; data: string[] } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const index = Number(b.readBigUInt64BE(0));
  const count = b.readUInt32BE(8);
  const data: string[] = [];
  let at = 12;
  for (let i = 0; i < count; i++) {
    const n = b.readUInt32BE(at);
    data.push(b.subarray(at + 4, at + 4 + n).toString('utf8'));
    at += 4 + n;
  }
  if (!b.subarray(at).equals(Buffer.from(NOISE))) throw new Error('snapshot bytes were damaged');
  return { index, data };
}

export class BytesStateMachine implements StateMachine, SnapshotSource {
  data: string[] = [];
  index = 0;
  restores = 0;

  appliedIndex(): number {
    return this.index;
  }

  apply(entries: Entry[]): ApplyOutcome[] {
    const out: ApplyOutcome[] = [];
    for (const e of entries) {
      if (e.index <= this.index) continue;
      if (e.index !== this.index + 1) throw new Error(`gap at ${e.index}`);
      if (e.kind === 'command') this.data.push(e.data);
      this.index = e.index;
      out.push({ index: e.index, term: e.term, result: e.data });
    }
    return out;
  }

  encode(): Uint8Array {
    return encodeState(this.index, this.data);
  }

  restore(payload: SnapshotPayload): void {
    const bytes = payload.file ? fs.readFileSync(payload.file) : payload.read(0, payload.byteLength);
    const s = decodeState(bytes);
    if (s.index !== payload.meta.index)
      throw new Error(`snapshot holds ${s.index}, not ${payload.meta.index}`);
    this.data = s.data;
    this.index = s.index;
    this.restores++;
  }

  async snapshotTo(file: string, opts: SnapshotToOptions): Promise<SnapshotWritten | undefined> {
    const index = this.index;
    if (!opts.accept(index)) return undefined;
    await fs.promises.writeFile(file, this.encode());
    return { index };
  }
}
