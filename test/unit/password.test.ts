// Password hashes: the cost travels with the hash (old, cheaper hashes keep verifying), the default is
// OWASP's scrypt cost, and the dummy hash for unknown users costs what a real one does.
import { describe, expect, it } from 'vitest';
import { DEFAULT_COST, costOf, dummyHash, hashPassword, verifyPassword } from '../../src/chat/password.js';

describe('password hashes', () => {
  it("default to OWASP's scrypt cost: N = 2^17, r = 8, p = 1", () => {
    expect(DEFAULT_COST).toEqual({ N: 131072, r: 8, p: 1 });
  });

  it('a hash made at an older, lower cost still verifies (the string carries its parameters)', async () => {
    const old = await hashPassword('correct horse', { N: 16384, r: 8, p: 1 });
    expect(old.startsWith('scrypt$16384$8$1$')).toBe(true);
    expect(await verifyPassword('correct horse', old)).toBe(true);
    expect(await verifyPassword('wrong horse', old)).toBe(false);
    const cheap = await hashPassword('x'.repeat(8), { N: 1024, r: 8, p: 1 });
    expect(costOf(cheap)).toEqual({ N: 1024, r: 8, p: 1 });
    expect(await verifyPassword('x'.repeat(8), cheap)).toBe(true);
  });

  it('the dummy hash has the given cost and matches no password', async () => {
    const cost = { N: 2048, r: 8, p: 1 };
    const d = dummyHash(cost);
    expect(costOf(d)).toEqual(cost);
    expect(costOf(dummyHash())).toEqual(DEFAULT_COST);
    expect(await verifyPassword('', d)).toBe(false);
    expect(await verifyPassword('password123', d)).toBe(false);
  });

  it('refuses malformed hashes and absurd costs without hashing', async () => {
    expect(costOf('bcrypt$x')).toBeUndefined();
    expect(costOf('scrypt$0$8$1$a$b')).toBeUndefined();
    expect(costOf(`scrypt$${2 ** 24}$8$1$a$b`)).toBeUndefined();
    expect(await verifyPassword('pw', `scrypt$${2 ** 24}$8$1$AAAA$AAAA`)).toBe(false);
  });
});
