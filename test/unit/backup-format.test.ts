// The backup file format (src/backup/format.ts): what the writer produces verifies, and every way a
// file can be damaged (cut short, bytes appended, a flipped bit in the payload or the header, another
// file altogether, another version) is refused with its own one-line reason.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BackupFileError,
  BackupWriter,
  HEADER_BYTES,
  extractPayload,
  verifyBackupFile,
} from '../../src/backup/format.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-backup-format-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const DIGEST = 'ab'.repeat(32);
const payload = randomBytes(200_000);

async function writeBackup(name = 'b.qcb'): Promise<string> {
  const file = join(dir, name);
  const w = await BackupWriter.create(file);
  // Uneven chunks, as a stream delivers them.
  for (let at = 0; at < payload.length; at += 65_000) await w.append(payload.subarray(at, at + 65_000));
  await w.finish({ lastApplied: 1234, stateDigest: DIGEST });
  return file;
}

async function reason(file: string): Promise<string> {
  try {
    await verifyBackupFile(file);
  } catch (err) {
    expect(err).toBeInstanceOf(BackupFileError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('the file was accepted');
}

function damage(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x01;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

describe('backup file format', () => {
  it('reads back what the writer wrote: header fields, and the payload byte for byte', async () => {
    const file = await writeBackup();
    expect(fs.statSync(file).size).toBe(HEADER_BYTES + payload.length);
    expect(fs.statSync(file).mode & 0o077).toBe(0);
    const h = await verifyBackupFile(file);
    expect(h).toMatchObject({ version: 1, lastApplied: 1234, length: payload.length, stateDigest: DIGEST });
    const out = join(dir, 'payload');
    await extractPayload(file, h, out);
    expect(fs.readFileSync(out).equals(payload)).toBe(true);
  });

  it('refuses a file cut short anywhere: in the header or in the payload', async () => {
    const file = await writeBackup();
    const whole = fs.readFileSync(file);
    for (const cut of [0, 5, 8, 50, HEADER_BYTES, HEADER_BYTES + 1, whole.length - 1]) {
      fs.writeFileSync(file, whole.subarray(0, cut));
      const why = await reason(file);
      // Under 8 bytes even the magic is incomplete: that reads as "not a backup".
      expect(why).toMatch(cut < 8 ? /bad magic/ : /truncated/);
    }
  });

  it('refuses bytes appended after the payload', async () => {
    const file = await writeBackup();
    fs.appendFileSync(file, 'x');
    expect(await reason(file)).toMatch(/corrupt: 1 bytes follow/);
  });

  it('refuses a flipped bit in the payload, and in any header field, by the checksum', async () => {
    const file = await writeBackup();
    const whole = fs.readFileSync(file);
    // Payload; the low bytes of last_applied; the state digest (32..63); the checksum itself (64..95).
    for (const at of [HEADER_BYTES + 10, whole.length - 1, 22, 23, 40, 63, 64, 95]) {
      fs.writeFileSync(file, whole);
      damage(file, at);
      expect(await reason(file)).toBe('the backup is corrupt: its checksum does not match its contents');
    }
  });

  it('refuses a flipped bit in the length by the size', async () => {
    const file = await writeBackup();
    damage(file, 31);
    expect(await reason(file)).toMatch(/truncated|corrupt/);
  });

  it('refuses another file (bad magic) and another format version, each saying so', async () => {
    const other = join(dir, 'other');
    fs.writeFileSync(other, 'SQLite format 3\0 and more bytes than a header holds'.repeat(4));
    expect(await reason(other)).toBe('not a quorum-chat backup file (bad magic)');
    const file = await writeBackup();
    const whole = fs.readFileSync(file);
    whole.writeUInt32BE(2, 8);
    fs.writeFileSync(file, whole);
    expect(await reason(file)).toBe('the backup has format version 2; this quorum-chat reads version 1');
  });

  it('says why it cannot open a file', async () => {
    expect(await reason(join(dir, 'missing.qcb'))).toBe('cannot open the file (ENOENT)');
  });

  it('abort removes the partial file', async () => {
    const file = join(dir, 'partial.tmp');
    const w = await BackupWriter.create(file);
    await w.append(payload.subarray(0, 1000));
    await w.abort();
    expect(fs.existsSync(file)).toBe(false);
  });
});
