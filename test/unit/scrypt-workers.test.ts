// scrypt on low-priority worker threads: the same keys as node:crypto, the workers' nice value is 10
// while the event loop's stays 0, and a failed hash does not shrink the pool.
import { scryptSync } from 'node:crypto';
import { getPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword, scryptOnPool, verifyPassword } from '../../src/chat/password.js';
import { ScryptWorkers } from '../../src/chat/scrypt-workers.js';

const cost = { N: 1024, r: 8, p: 1 };
let pool: ScryptWorkers | undefined;
afterEach(() => {
  pool?.close();
  pool = undefined;
});

describe('ScryptWorkers', () => {
  it('derive the same key as scryptSync; hashes made on the workers verify on the pool and back', async () => {
    pool = new ScryptWorkers(2);
    const salt = Buffer.from('0123456789abcdef');
    const key = await pool.derive('correct horse', salt, 32, cost);
    expect(key.equals(scryptSync('correct horse', salt, 32, cost))).toBe(true);
    const onWorkers = await hashPassword('password123', cost, pool.derive);
    expect(await verifyPassword('password123', onWorkers, scryptOnPool)).toBe(true);
    const onPool = await hashPassword('password123', cost);
    expect(await verifyPassword('password123', onPool, pool.derive)).toBe(true);
    expect(await verifyPassword('password124', onPool, pool.derive)).toBe(false);
  });

  it('run at a low CPU priority (nice 10), leaving the event loop at its own', async () => {
    const before = getPriority();
    pool = new ScryptWorkers(2);
    expect(await pool.priorities).toEqual([10, 10]);
    expect(getPriority()).toBe(before);
  });

  it('more jobs than workers all complete; a failing job is reported and the pool keeps working', async () => {
    pool = new ScryptWorkers(1);
    const salt = Buffer.from('salt');
    const keys = await Promise.all([1, 2, 3].map((i) => pool?.derive(`pw${i}`, salt, 16, cost)));
    expect(keys.map((k) => k?.length)).toEqual([16, 16, 16]);
    // N must be a power of two: scrypt refuses, the caller hears it.
    await expect(pool.derive('x', salt, 16, { N: 1000, r: 8, p: 1 })).rejects.toThrow();
    expect((await pool.derive('x', salt, 16, cost)).equals(scryptSync('x', salt, 16, cost))).toBe(true);
  });

  it('refuses work once closed', async () => {
    pool = new ScryptWorkers(1);
    pool.close();
    await expect(pool.derive('x', Buffer.from('s'), 16, cost)).rejects.toThrow(/stopped/);
  });
});
