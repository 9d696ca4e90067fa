// Password hashing with scrypt (node:crypto): a random salt per password, a slow hash, and the cost
// parameters stored with the hash so they can be raised later without breaking old accounts.
// Hashing happens on the leader before proposing (it needs randomness); apply only stores the result.
// Every hash and every check runs through a HashQueue (hash-queue.ts), which bounds how many run at
// once and sheds the rest; on a server they run on low-priority worker threads (scrypt-workers.ts).
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/**
 * OWASP Password Storage Cheat Sheet (scrypt, when Argon2id is not at hand): N = 2^17, r = 8, p = 1,
 * that is 128 MiB of memory per hash. Measured with `node scripts/scrypt-cost.mjs` on the 2-core
 * development machine (Node 20, shared with other work): a median of about 650 ms per hash
 * (640-800 ms over 7 runs), against about 80 ms for the N = 2^14 used before. Each hash holds one
 * thread (and a core) that long, never the event loop.
 */
export const DEFAULT_COST: ScryptCost = { N: 2 ** 17, r: 8, p: 1 };
const KEY_LEN = 32;
/** The largest N a stored hash may ask for (1 GiB at r = 8): a bound on what one check can cost. */
const MAX_N = 2 ** 20;

/** Computes one scrypt key. The server uses low-priority worker threads (scrypt-workers.ts). */
export type Derive = (password: string, salt: Buffer, keyLen: number, cost: ScryptCost) => Promise<Buffer>;

/** scrypt on libuv's thread pool (the default; tests and tools). */
export const scryptOnPool: Derive = (password, salt, keyLen, cost) =>
  new Promise((resolve, reject) => {
    // maxmem above 128·N·r so that larger N values are accepted.
    scrypt(password, salt, keyLen, { ...cost, maxmem: 256 * cost.N * cost.r + (1 << 20) }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });

/** `scrypt$N$r$p$<salt b64>$<hash b64>`. */
export async function hashPassword(
  password: string,
  cost: ScryptCost = DEFAULT_COST,
  derive: Derive = scryptOnPool,
): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, KEY_LEN, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** The cost parameters a stored hash carries, or undefined when it is not a hash of ours. */
export function costOf(stored: string): ScryptCost | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0)) return undefined;
  if (N > MAX_N || r > 32 || p > 16) return undefined;
  return { N, r, p };
}

/**
 * True when `password` matches `stored`; false for a wrong password or a malformed hash. The cost comes
 * from the stored string, so hashes made at an older (lower) cost keep verifying.
 */
export async function verifyPassword(
  password: string,
  stored: string,
  derive: Derive = scryptOnPool,
): Promise<boolean> {
  const cost = costOf(stored);
  if (!cost) return false;
  const parts = stored.split('$');
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  const key = await derive(password, salt, KEY_LEN, cost);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * A well-formed hash at `cost` that no password matches (its key is random bytes, not derived). Checking
 * a password against it costs exactly what checking a real hash at that cost costs, so Login does the
 * same work for an unknown user as for a wrong password, without hashing anything to make it.
 */
export function dummyHash(cost: ScryptCost = DEFAULT_COST): string {
  const salt = randomBytes(16).toString('base64');
  const key = randomBytes(KEY_LEN).toString('base64');
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt}$${key}`;
}
