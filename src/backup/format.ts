// The backup file (`quorum-chat backup --out FILE`): a fixed header, then the copy of the chat state
// that ClusterService.Backup streamed (a SQLite file of the chat tables, as a Raft snapshot holds).
//
//   offset  size  field
//   0       8     magic "QCBACKUP"
//   8       4     format version, uint32 big-endian (1)
//   12      4     header size, uint32 big-endian (96)
//   16      8     last_applied, uint64 big-endian: the applied index the copy is consistent with
//   24      8     payload length in bytes, uint64 big-endian
//   32      32    state_digest (GetStatus's hex digest at last_applied, as 32 raw bytes)
//   64      32    checksum: SHA-256 of the payload followed by header bytes 0..63
//   96      ...   payload
//
// The checksum covers the header's fields too, so a flipped bit anywhere but in the checksum itself
// is caught by it; a file cut short or with bytes appended is caught by the length. The writer writes
// the payload as it arrives and the header last, so a file with a valid header is a complete one.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { UserError } from '../user-error.js';

export const BACKUP_MAGIC = Buffer.from('QCBACKUP', 'latin1');
export const BACKUP_VERSION = 1;
export const HEADER_BYTES = 96;
const CHECKED_HEADER_BYTES = 64;

export interface BackupHeader {
  version: number;
  lastApplied: number;
  length: number;
  /** Hex, as GetStatus shows it. */
  stateDigest: string;
  /** Hex SHA-256 of the payload followed by header bytes 0..63. */
  checksum: string;
}

/** A backup file that cannot be used, with the one-line reason (the CLI prints it as is). */
export class BackupFileError extends UserError {}

/** Header bytes 0..63: everything but the checksum. */
function headerFields(h: { lastApplied: number; length: number; stateDigest: string }): Buffer {
  if (!/^[0-9a-f]{64}$/.test(h.stateDigest)) {
    throw new Error(`state_digest '${h.stateDigest}' is not 64 hex digits`);
  }
  const b = Buffer.alloc(CHECKED_HEADER_BYTES);
  BACKUP_MAGIC.copy(b, 0);
  b.writeUInt32BE(BACKUP_VERSION, 8);
  b.writeUInt32BE(HEADER_BYTES, 12);
  b.writeBigUInt64BE(BigInt(h.lastApplied), 16);
  b.writeBigUInt64BE(BigInt(h.length), 24);
  Buffer.from(h.stateDigest, 'hex').copy(b, 32);
  return b;
}

/**
 * Writes a backup file: `append` the payload as it arrives (hashed on the way), then `finish` with the
 * copy's index and digest, which writes the header and fsyncs. `abort` closes and removes the file.
 */
export class BackupWriter {
  private readonly hash = createHash('sha256');
  private length = 0;
  private constructor(
    readonly path: string,
    private readonly fh: fs.promises.FileHandle,
  ) {}

  /** Creates (or truncates) `path`, private to its user, with room for the header. */
  static async create(path: string): Promise<BackupWriter> {
    const fh = await fs.promises.open(path, 'w', 0o600);
    await fh.write(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, 0);
    return new BackupWriter(path, fh);
  }

  /** Bytes of payload written so far. */
  get written(): number {
    return this.length;
  }

  async append(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.fh.write(
        chunk,
        done,
        chunk.length - done,
        HEADER_BYTES + this.length + done,
      );
      done += bytesWritten;
    }
    this.length += chunk.length;
  }

  async finish(copy: { lastApplied: number; stateDigest: string }): Promise<BackupHeader> {
    const fields = headerFields({ ...copy, length: this.length });
    const checksum = this.hash.update(fields).digest();
    await this.fh.write(Buffer.concat([fields, checksum]), 0, HEADER_BYTES, 0);
    await this.fh.sync();
    await this.fh.close();
    return {
      version: BACKUP_VERSION,
      lastApplied: copy.lastApplied,
      length: this.length,
      stateDigest: copy.stateDigest,
      checksum: checksum.toString('hex'),
    };
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await fs.promises.rm(this.path, { force: true });
  }
}

/** Parses and checks the header alone (magic, version, sizes); the payload is not read. */
export function parseHeader(bytes: Buffer, fileSize: number): BackupHeader {
  if (bytes.length < BACKUP_MAGIC.length || !bytes.subarray(0, BACKUP_MAGIC.length).equals(BACKUP_MAGIC)) {
    throw new BackupFileError('not a quorum-chat backup file (bad magic)');
  }
  if (bytes.length < HEADER_BYTES) {
    throw new BackupFileError(
      `the backup is truncated: ${fileSize} bytes, shorter than its ${HEADER_BYTES}-byte header`,
    );
  }
  const version = bytes.readUInt32BE(8);
  if (version !== BACKUP_VERSION) {
    throw new BackupFileError(
      `the backup has format version ${version}; this quorum-chat reads version ${BACKUP_VERSION}`,
    );
  }
  const headerSize = bytes.readUInt32BE(12);
  if (headerSize !== HEADER_BYTES) {
    throw new BackupFileError(`the backup is corrupt: its header size is ${headerSize}, not ${HEADER_BYTES}`);
  }
  const lastApplied = bytes.readBigUInt64BE(16);
  const length = bytes.readBigUInt64BE(24);
  if (lastApplied > BigInt(Number.MAX_SAFE_INTEGER) || length > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BackupFileError('the backup is corrupt: its header holds impossible sizes');
  }
  const expected = HEADER_BYTES + Number(length);
  if (fileSize < expected) {
    throw new BackupFileError(
      `the backup is truncated: ${fileSize} bytes of the ${expected} its header announces`,
    );
  }
  if (fileSize > expected) {
    throw new BackupFileError(
      `the backup is corrupt: ${fileSize - expected} bytes follow the ${expected} its header announces`,
    );
  }
  return {
    version,
    lastApplied: Number(lastApplied),
    length: Number(length),
    stateDigest: bytes.subarray(32, 64).toString('hex'),
    checksum: bytes.subarray(64, 96).toString('hex'),
  };
}

/**
 * Checks a whole backup file: header, length and checksum (the payload is read once, in chunks).
 * Throws BackupFileError with a one-line reason; returns the header when the file is sound.
 */
export async function verifyBackupFile(path: string): Promise<BackupHeader> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new BackupFileError(`cannot open the file (${code})`);
  }
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(size, HEADER_BYTES));
    await readFully(fh, head, 0);
    const header = parseHeader(head, size);
    const hash = createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    for (let at = 0; at < header.length; ) {
      const n = Math.min(buf.length, header.length - at);
      await readFully(fh, buf.subarray(0, n), HEADER_BYTES + at);
      hash.update(buf.subarray(0, n));
      at += n;
    }
    hash.update(head.subarray(0, CHECKED_HEADER_BYTES));
    if (hash.digest('hex') !== header.checksum) {
      throw new BackupFileError('the backup is corrupt: its checksum does not match its contents');
    }
    return header;
  } finally {
    await fh.close();
  }
}

/** Copies the payload of a verified backup into `out` (a new file, private to its user). */
export async function extractPayload(path: string, header: BackupHeader, out: string): Promise<void> {
  const src = await fs.promises.open(path, 'r');
  try {
    const dst = await fs.promises.open(out, 'wx', 0o600);
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let at = 0; at < header.length; ) {
        const n = Math.min(buf.length, header.length - at);
        await readFully(src, buf.subarray(0, n), HEADER_BYTES + at);
        await dst.write(buf, 0, n, at);
        at += n;
      }
      await dst.sync();
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

async function readFully(fh: fs.promises.FileHandle, into: Buffer, position: number): Promise<void> {
  let got = 0;
  while (got < into.length) {
    const { bytesRead } = await fh.read(into, got, into.length - got, position + got);
    if (bytesRead === 0) throw new BackupFileError('the backup is truncated: it ended while being read');
    got += bytesRead;
  }
}
