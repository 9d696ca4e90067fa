// Snapshot files: metadata (index, term, configuration) and opaque bytes that only the state machine
// understands. Raft stores them, streams them in chunks, receives them and hands them back to the
// state machine (StateMachine.snapshotTo writes them, StateMachine.restore reads them); it never
// looks inside.
//
// On disk, in the snapshot directory:
//   snapshot.meta              JSON: { index, term, config, bytes, data }: the latest snapshot
//   snapshot-<index>-<term>.data  its bytes (the file named by `data`)
// A snapshot is complete exactly when snapshot.meta names it, and snapshot.meta only ever appears by
// rename(2) of a fully written, fsynced temporary file, after the bytes it names were fsynced and
// renamed into place. That rename is the commit point: a crash before it leaves the previous snapshot
// intact (the new bytes are an orphan the next start removes), a crash after it leaves the new one.
// Leftover temporary files (`*.taking`, `*.incoming`, `*.tmp`) and orphaned `.data` files are removed
// on the next start.
//
// Recovery note for the host: the rename is the commit point of an installed snapshot. If the process
// dies after it but before the state machine restored it and the log was reset, then on start
// `latest().index` exceeds the state machine's applied index, and the host must restore from
// `payload()` and call LogStore.resetToSnapshot(latest()) before anything else (SnapshotInstaller).

import * as fs from 'node:fs';
import { join } from 'node:path';
import type { ClusterConfig, SnapshotMeta } from '../../machines/protocol.js';
import { mkdirPrivate, touchPrivate } from '../private-files.js';
import type { SnapshotPayload, SnapshotSource, SnapshotStore, SnapshotTakeStats } from './interfaces.js';

const NONE: SnapshotMeta = { index: 0, term: 0, config: { members: [] } };
const META_FILE = 'snapshot.meta';

/** fsync a file or a directory (after a rename into it). */
export function fsyncPath(path: string): void {
  const fd = fs.openSync(path, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function fsyncPathAsync(path: string): Promise<void> {
  const fh = await fs.promises.open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** What snapshot.meta holds. */
interface MetaRecord {
  index: number;
  term: number;
  config: ClusterConfig;
  /** Size of the data file: a file of another size is not this snapshot's. */
  bytes: number;
  /** The data file's name in the directory. */
  data: string;
}

function parseMeta(text: string): MetaRecord | undefined {
  try {
    const r = JSON.parse(text) as MetaRecord;
    const whole = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
    if (!whole(r.index) || !whole(r.term) || !whole(r.bytes)) return undefined;
    if (typeof r.data !== 'string' || !/^snapshot-\d+-\d+\.data$/.test(r.data)) return undefined;
    if (!Array.isArray(r.config?.members)) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

/**
 * Checks the bytes of a received snapshot before they become the latest (the state machine's own
 * check, e.g. that a database file is sound and at `meta.index`): false refuses them, and the leader is
 * asked to start over. Raft has no way to judge the bytes itself.
 */
export type SnapshotVerifier = (file: string, meta: SnapshotMeta) => boolean;

export interface FileSnapshotStoreOptions {
  verify?: SnapshotVerifier;
}

interface Incoming {
  meta: SnapshotMeta;
  fd: number;
  size: number;
}

export class FileSnapshotStore implements SnapshotStore {
  private readonly metaFile: string;
  private readonly takingFile: string;
  private readonly incomingFile: string;
  private meta: SnapshotMeta = NONE;
  private dataFile: string | undefined;
  private size = 0;
  /** Open on the current snapshot's data so chunk reads stay consistent even if a newer one comes in. */
  private fd: number | undefined;
  private incoming: Incoming | undefined;
  /** A background take is running (one at a time; it owns the `.taking` file). */
  private taking = false;
  private closed = false;
  /** Figures of the last background take (from the state machine's write) and its size. */
  lastTake: (SnapshotTakeStats & { bytes: number }) | undefined;

  constructor(
    private readonly dir: string,
    private readonly opts: FileSnapshotStoreOptions = {},
  ) {
    mkdirPrivate(dir);
    this.metaFile = join(dir, META_FILE);
    this.takingFile = join(dir, 'snapshot.taking');
    this.incomingFile = join(dir, 'snapshot.incoming');
    let record: MetaRecord | undefined;
    if (fs.existsSync(this.metaFile)) {
      record = parseMeta(fs.readFileSync(this.metaFile, 'utf8'));
      const data = record && join(dir, record.data);
      if (!record || !data || !fs.existsSync(data) || fs.statSync(data).size !== record.bytes) {
        throw new Error(`snapshot ${this.metaFile} is unreadable or its data file is missing`);
      }
    }
    // Leftovers of a take or transfer a crash cut short, data files no snapshot.meta names, and the
    // single-file snapshot of older versions (`snapshot.db`), which this store cannot read: such a
    // replica starts without a snapshot and takes a new one (its state and log do not depend on it).
    for (const f of fs.readdirSync(dir)) {
      const ours =
        /\.(taking|incoming|tmp)$/.test(f) || /^snapshot-\d+-\d+\.data$/.test(f) || f === 'snapshot.db';
      if (ours && f !== record?.data) fs.rmSync(join(dir, f), { force: true });
    }
    if (record) {
      const { bytes: _bytes, data, ...meta } = record;
      this.adopt(meta, join(dir, data));
    }
  }

  latest(): SnapshotMeta {
    return this.meta;
  }

  /** The data file of the latest snapshot (undefined when there is none). */
  path(): string | undefined {
    return this.fd === undefined ? undefined : this.dataFile;
  }

  /** Size in bytes of the latest snapshot. */
  byteLength(): number {
    return this.size;
  }

  payload(): SnapshotPayload | undefined {
    const file = this.path();
    if (!file) return undefined;
    const meta = this.meta;
    return {
      meta,
      byteLength: this.size,
      file,
      read: (offset, length) => this.read(offset, length).chunk,
    };
  }

  read(offset: number, length: number): { chunk: Uint8Array; done: boolean } {
    if (this.fd === undefined) return { chunk: new Uint8Array(0), done: true };
    const want = Math.max(0, Math.min(length, this.size - offset));
    const chunk = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(this.fd, chunk, got, want - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return { chunk: chunk.subarray(0, got), done: offset + got >= this.size };
  }

  /**
   * Make the bytes of `file` (a complete file in the same directory tree, e.g. written by the state
   * machine) the latest snapshot at `meta`; the file is moved, not copied. Synchronous and durable
   * before it returns.
   */
  install(meta: SnapshotMeta, file: string): SnapshotMeta {
    this.commit(meta, file);
    return this.meta;
  }

  /**
   * Take a snapshot in the background: the state machine writes its bytes (`source.snapshotTo`, which
   * must not hold the event loop for long), then they become the latest at the index they are
   * consistent with, with the term and configuration `metaAt` gives for it. Resolves with the new
   * latest snapshot, or undefined when nothing was installed (abandoned, or a newer snapshot arrived
   * meanwhile, e.g. one received from the leader).
   */
  async takeInSteps(
    source: SnapshotSource,
    opts: { metaAt: (index: number) => SnapshotMeta | undefined },
  ): Promise<SnapshotMeta | undefined> {
    if (this.taking) throw new Error('a snapshot is already being taken');
    if (this.closed) return undefined;
    this.taking = true;
    try {
      fs.rmSync(this.takingFile, { force: true });
      touchPrivate(this.takingFile);
      let meta: SnapshotMeta | undefined;
      const written = await source
        .snapshotTo(this.takingFile, {
          // Only a snapshot newer than the latest one is worth taking.
          accept: (index) => {
            meta = index <= this.meta.index ? undefined : opts.metaAt(index);
            return meta !== undefined && meta.index === index;
          },
          cancelled: () => this.closed,
        })
        .catch((err: unknown) => {
          fs.rmSync(this.takingFile, { force: true });
          throw err;
        });
      // A snapshot installed meanwhile (received from the leader) is newer: it wins.
      if (!written || !meta || this.closed || written.index !== meta.index || meta.index <= this.meta.index) {
        fs.rmSync(this.takingFile, { force: true });
        return undefined;
      }
      await this.commitAsync(meta, this.takingFile);
      if (written.stats) this.lastTake = { ...written.stats, bytes: this.size };
      return this.meta;
    } finally {
      this.taking = false;
    }
  }

  /** True while a background take is running. */
  isTaking(): boolean {
    return this.taking;
  }

  receive(meta: SnapshotMeta, offset: number, chunk: Uint8Array, done: boolean): number {
    if (meta.index === this.meta.index && meta.term === this.meta.term && this.fd !== undefined) {
      return this.size; // already installed (a repeated last chunk after a lost response)
    }
    if (this.incoming && (this.incoming.meta.index !== meta.index || this.incoming.meta.term !== meta.term)) {
      this.dropIncoming();
    }
    if (!this.incoming) {
      if (offset !== 0) return 0; // a transfer we have no start of: ask for it from the beginning
      this.incoming = { meta, fd: fs.openSync(this.incomingFile, 'w', 0o600), size: 0 };
    }
    const inc = this.incoming;
    if (offset !== inc.size) return inc.size; // a duplicate or a gap: tell the leader where we are
    let written = 0;
    while (written < chunk.length) {
      written += fs.writeSync(inc.fd, chunk, written, chunk.length - written, offset + written);
    }
    inc.size += chunk.length;
    if (!done) return inc.size;

    fs.fsyncSync(inc.fd);
    fs.closeSync(inc.fd);
    this.incoming = undefined;
    if (this.opts.verify && !this.opts.verify(this.incomingFile, meta)) {
      fs.rmSync(this.incomingFile, { force: true });
      return 0; // damaged or not what was announced: start over
    }
    // Durable before this returns, so before the leader hears that it is installed.
    this.commit(meta, this.incomingFile);
    return this.size;
  }

  /** Stop any transfer and release the file. */
  close(): void {
    this.closed = true;
    this.dropIncoming();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private dropIncoming(): void {
    if (!this.incoming) return;
    fs.closeSync(this.incoming.fd);
    fs.rmSync(this.incomingFile, { force: true });
    this.incoming = undefined;
  }

  /** The data file's final name, and the metadata record that names it. */
  private record(meta: SnapshotMeta, file: string): { data: string; text: string } {
    const data = `snapshot-${meta.index}-${meta.term}.data`;
    const bytes = fs.statSync(file).size;
    const record: MetaRecord = { index: meta.index, term: meta.term, config: meta.config, bytes, data };
    return { data, text: `${JSON.stringify(record)}\n` };
  }

  /**
   * Make a complete temp file the latest snapshot: fsync it, move it to its data name, then write and
   * rename snapshot.meta naming it (the commit point), fsync the directory, drop the previous data.
   */
  private commit(meta: SnapshotMeta, tempFile: string): void {
    fs.chmodSync(tempFile, 0o600); // a snapshot is as private as the state it holds
    fsyncPath(tempFile);
    const { data, text } = this.record(meta, tempFile);
    const dataPath = join(this.dir, data);
    fs.renameSync(tempFile, dataPath);
    const tmpMeta = `${this.metaFile}.tmp`;
    fs.writeFileSync(tmpMeta, text, { mode: 0o600 });
    fsyncPath(tmpMeta);
    fs.renameSync(tmpMeta, this.metaFile);
    fsyncPath(this.dir);
    this.adopt(meta, dataPath);
  }

  /** commit(), with the fsyncs of a large file on the thread pool rather than the event loop. */
  private async commitAsync(meta: SnapshotMeta, tempFile: string): Promise<void> {
    fs.chmodSync(tempFile, 0o600);
    await fsyncPathAsync(tempFile);
    const { data, text } = this.record(meta, tempFile);
    const dataPath = join(this.dir, data);
    fs.renameSync(tempFile, dataPath);
    const tmpMeta = `${this.metaFile}.tmp`;
    await fs.promises.writeFile(tmpMeta, text, { mode: 0o600 });
    await fsyncPathAsync(tmpMeta);
    fs.renameSync(tmpMeta, this.metaFile);
    await fsyncPathAsync(this.dir);
    this.adopt(meta, dataPath);
  }

  private adopt(meta: SnapshotMeta, dataPath: string): void {
    const previous = this.dataFile;
    // Closing the last descriptor of a replaced file frees tens of MB of blocks, which can take a
    // while on a busy disk. Do that on the thread pool, not the event loop.
    if (this.fd !== undefined) fs.close(this.fd, () => {});
    this.fd = fs.openSync(dataPath, 'r');
    this.size = fs.fstatSync(this.fd).size;
    this.meta = meta;
    this.dataFile = dataPath;
    if (previous && previous !== dataPath) fs.rm(previous, { force: true }, () => {});
  }
}
