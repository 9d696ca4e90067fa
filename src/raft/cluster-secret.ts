// The cluster secret: proof of membership on every RaftService call and on membership changes
// (../shared/API.md §2). It works like a join token: the server that bootstraps a cluster creates it,
// every later server must present the same one.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { mkdirPrivate } from '../private-files.js';
import { UserError } from '../user-error.js';

/**
 * The one rule every command follows (server and tools alike), printed when the file is not found. The
 * tools take `--data-dir` for this alone; without it they assume the server's default data dir.
 */
export const SECRET_RULE =
  'cluster.secret in the parent of the data dir (--data-dir, default ./data/ID, so ./data/cluster.secret)';

/** `--cluster-secret-file`, or `cluster.secret` in the parent of the data dir. */
export function secretPath(opts: { secretFile?: string; dataDir: string }): string {
  if (opts.secretFile) return resolve(opts.secretFile);
  return join(dirname(resolve(opts.dataDir)), 'cluster.secret');
}

/**
 * Read the cluster secret; with `create` (the bootstrapping server) write a fresh random one first
 * when the file is missing. Throws UserError with one line when it is missing, unreadable or empty.
 */
export function loadClusterSecret(opts: { secretFile?: string; dataDir: string; create: boolean }): string {
  const file = secretPath(opts);
  if (opts.create) {
    try {
      mkdirPrivate(dirname(file));
      // 'wx' fails if the file exists, so two servers bootstrapping side by side never overwrite
      // each other's secret: the loser reads the winner's below.
      fs.writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST')
        throw new UserError(`cannot create the cluster secret file ${file}: ${code ?? err}`);
    }
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new UserError(
        `cluster secret file ${file} not found (the secret is --cluster-secret-file, or else ${SECRET_RULE}): copy it from a member of the cluster or pass --cluster-secret-file`,
      );
    }
    throw new UserError(`cannot read the cluster secret file ${file}: ${code ?? err}`);
  }
  const secret = text.trim();
  if (secret === '') throw new UserError(`cluster secret file ${file} is empty`);
  if (/\s/.test(secret))
    throw new UserError(`cluster secret file ${file} must hold one token without spaces`);
  return secret;
}

/** A short id derived from the secret: lets a data dir recognise that it belongs to another cluster. */
export function clusterIdFromSecret(secret: string): string {
  return createHash('sha256').update(`quorum-chat cluster id\0${secret}`).digest('hex').slice(0, 16);
}

/** The metadata value every call carries. */
export function bearer(secret: string): string {
  return `Bearer ${secret}`;
}

/**
 * Constant-time check of an `authorization` metadata value against the secret. Both sides are hashed
 * first so the comparison time depends on neither the length nor the content of the guess.
 */
export function checkBearer(header: unknown, secret: string): boolean {
  if (typeof header !== 'string') return false;
  const want = createHash('sha256').update(bearer(secret)).digest();
  const got = createHash('sha256').update(header).digest();
  return timingSafeEqual(want, got);
}

/**
 * Why a presented `authorization` value is refused, or undefined when it carries the secret: 'missing'
 * (no bearer token at all) reads differently from 'wrong' (a token that is not this cluster's secret).
 */
export function secretRefusal(header: unknown, secret: string): 'missing' | 'wrong' | undefined {
  if (typeof header !== 'string' || !/^Bearer \S/.test(header)) return 'missing';
  return checkBearer(header, secret) ? undefined : 'wrong';
}

/** The sentence for a refusal, naming the call (or the page) that was refused. */
export function secretRefusalMessage(why: 'missing' | 'wrong', what: string): string {
  return why === 'missing'
    ? `${what} needs the cluster secret as 'authorization: Bearer <secret>', and none was given.`
    : `The cluster secret given to ${what} is wrong: it is not this cluster's (compare cluster.secret on a member).`;
}
