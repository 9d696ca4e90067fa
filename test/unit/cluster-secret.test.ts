import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bearer,
  checkBearer,
  clusterIdFromSecret,
  loadClusterSecret,
  secretPath,
} from '../../src/raft/cluster-secret.js';
import { UserError } from '../../src/user-error.js';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'qc-secret-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('cluster secret', () => {
  it('defaults to cluster.secret in the parent of the data dir', () => {
    expect(secretPath({ dataDir: join(root, 'data', 's1') })).toBe(join(root, 'data', 'cluster.secret'));
    expect(secretPath({ dataDir: join(root, 'd'), secretFile: join(root, 'x.key') })).toBe(
      join(root, 'x.key'),
    );
  });

  it('the bootstrapping server creates it (0600, 32 random bytes hex); later servers read the same', () => {
    const first = loadClusterSecret({ dataDir: join(root, 'data', 's1'), create: true });
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    const file = join(root, 'data', 'cluster.secret');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(loadClusterSecret({ dataDir: join(root, 'data', 's2'), create: false })).toBe(first);
    // Bootstrapping again never replaces an existing secret.
    expect(loadClusterSecret({ dataDir: join(root, 'data', 's3'), create: true })).toBe(first);
    // Another bootstrap elsewhere gets a different one.
    expect(loadClusterSecret({ dataDir: join(root, 'other', 's1'), create: true })).not.toBe(first);
  });

  it('a joiner without the file gets a one-line UserError naming the file', () => {
    const dataDir = join(root, 'data', 's2');
    expect(() => loadClusterSecret({ dataDir, create: false })).toThrow(UserError);
    expect(() => loadClusterSecret({ dataDir, create: false })).toThrow(
      /cluster\.secret not found.*--cluster-secret-file/,
    );
  });

  it('an explicit file is used as given, and an empty or unreadable one is refused', () => {
    const file = join(root, 'my.secret');
    fs.writeFileSync(file, '  s3cret-token\n');
    expect(loadClusterSecret({ dataDir: join(root, 'd'), secretFile: file, create: false })).toBe(
      's3cret-token',
    );
    fs.writeFileSync(file, '\n');
    expect(() => loadClusterSecret({ dataDir: join(root, 'd'), secretFile: file, create: false })).toThrow(
      /is empty/,
    );
    const dir = join(root, 'adir');
    fs.mkdirSync(dir);
    expect(() => loadClusterSecret({ dataDir: join(root, 'd'), secretFile: dir, create: false })).toThrow(
      /cannot read the cluster secret file/,
    );
  });

  it('checks bearer values exactly', () => {
    expect(checkBearer(bearer('abc'), 'abc')).toBe(true);
    expect(checkBearer('Bearer abd', 'abc')).toBe(false);
    expect(checkBearer('Bearer abcd', 'abc')).toBe(false);
    expect(checkBearer('abc', 'abc')).toBe(false);
    expect(checkBearer(undefined, 'abc')).toBe(false);
    expect(checkBearer(Buffer.from('Bearer abc'), 'abc')).toBe(false);
  });

  it('derives a stable cluster id per secret', () => {
    expect(clusterIdFromSecret('x')).toBe(clusterIdFromSecret('x'));
    expect(clusterIdFromSecret('x')).not.toBe(clusterIdFromSecret('y'));
    expect(clusterIdFromSecret('x')).toMatch(/^[0-9a-f]{16}$/);
  });
});
