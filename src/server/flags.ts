// `quorum-chat server` flags (API.md §1). Every problem is a UserError: one line, exit 1, no stack.
import { DEFAULT_SESSION_TTL_MS, MAX_SESSION_TTL_MS } from '../chat/tokens.js';
import { UserError } from '../user-error.js';

export interface ServerConfig {
  id: string;
  host: string;
  port: number;
  dataDir: string;
  peers: string[];
  httpPort: number;
  heartbeatMs: number;
  electionMinMs: number;
  electionMaxMs: number;
  clusterSecretFile?: string;
  logLevel: string;
  /** Take a snapshot (and compact the log) every this many applied entries. */
  snapshotEvery: number;
  /** How long a session lives without use (ms); every use extends it. */
  sessionTtlMs: number;
  /** API.md Limits: failed Logins allowed per username per minute, cluster-wide. */
  loginFailuresPerMinute: number;
  /** API.md Limits: sustained writes per second per user, and the burst, cluster-wide. */
  writeRate: number;
  writeBurst: number;
  /** scrypt's N for new password hashes (a power of two); OWASP's 2^17 unless lowered (tests). */
  scryptN: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const FLAGS = [
  '--id',
  '--port',
  '--host',
  '--data-dir',
  '--peers',
  '--http-port',
  '--heartbeat-ms',
  '--election-timeout-ms',
  '--cluster-secret-file',
  '--log-level',
  '--snapshot-every',
  '--session-ttl',
  '--login-failures-per-minute',
  '--write-rate',
  '--write-burst',
  '--scrypt-n',
] as const;
type Flag = (typeof FLAGS)[number];

function port(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new UserError(`${flag} must be a port number from 1 to 65535, not '${value}'`);
  }
  return Number(value);
}

/** A whole number from `min` to `max`, or the default when the flag is absent. */
function count(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UserError(`${flag} must be a whole number from ${min} to ${max}, not '${value}'`);
  }
  return Number(value);
}

function positiveInt(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 3_600_000) {
    throw new UserError(`${flag} must be a positive whole number of milliseconds, not '${value}'`);
  }
  return Number(value);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration like `30d`, `12h`, `90m`, `45s`, `500ms`, or a bare number of milliseconds. */
export function parseDuration(flag: string, value: string, min: number, max: number): number {
  const m = /^(\d{1,15})(ms|s|m|h|d)?$/.exec(value);
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms'] : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < min || ms > max) {
    throw new UserError(
      `${flag} must be a duration from ${min / 1000} s to ${Math.floor(max / 86_400_000)} days, like 30d, 12h, 90m, 45s or a number of milliseconds, not '${value}'`,
    );
  }
  return ms;
}

/** `host:port` with a non-empty host and a valid port. */
export function checkAddress(flag: string, value: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d+)$/.exec(value);
  if (!m) throw new UserError(`${flag}: '${value}' is not HOST:PORT`);
  port(flag, m[2]);
  return value;
}

/** Parses `--flag value` and `--flag=value` forms; rejects unknown, repeated and valueless flags. */
export function parseServerFlags(argv: string[]): ServerConfig {
  const values = new Map<Flag, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = (eq > 0 ? arg.slice(0, eq) : arg) as Flag;
    if (!FLAGS.includes(name)) {
      throw new UserError(arg.startsWith('-') ? `unknown flag ${name}` : `unexpected argument '${arg}'`);
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UserError(`${name} needs a value`);
      i++;
    }
    if (values.has(name)) throw new UserError(`${name} is given more than once`);
    values.set(name, value);
  }

  const id = values.get('--id');
  if (id === undefined) throw new UserError('--id is required');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) {
    throw new UserError(`--id must be 1 to 64 characters of letters, digits, '_', '.' or '-', not '${id}'`);
  }
  const portValue = values.get('--port');
  if (portValue === undefined) throw new UserError('--port is required');
  const p = port('--port', portValue);
  const host = values.get('--host') ?? '127.0.0.1';
  if (!/^[A-Za-z0-9_.:-]+$/.test(host)) throw new UserError(`--host '${host}' is not a host name or address`);
  const dataDir = values.get('--data-dir') ?? `./data/${id}`;
  if (dataDir === '') throw new UserError('--data-dir must not be empty');
  const peersValue = values.get('--peers') ?? '';
  const peers = peersValue === '' ? [] : peersValue.split(',').map((a) => checkAddress('--peers', a.trim()));

  let httpPort: number;
  const httpValue = values.get('--http-port');
  if (httpValue !== undefined) httpPort = port('--http-port', httpValue);
  else {
    httpPort = p + 1000;
    if (httpPort > 65535)
      throw new UserError(`--port ${p} leaves no default HTTP port (PORT+1000); pass --http-port`);
  }
  if (httpPort === p) throw new UserError('--http-port must differ from --port');

  const heartbeatMs = positiveInt('--heartbeat-ms', values.get('--heartbeat-ms') ?? '50');
  const election = values.get('--election-timeout-ms') ?? '150-300';
  const em = /^(\d+)-(\d+)$/.exec(election);
  if (!em)
    throw new UserError(
      `--election-timeout-ms must be MIN-MAX in milliseconds, like 150-300, not '${election}'`,
    );
  const electionMinMs = positiveInt('--election-timeout-ms', em[1]);
  const electionMaxMs = positiveInt('--election-timeout-ms', em[2]);
  if (electionMinMs >= electionMaxMs) throw new UserError('--election-timeout-ms: MIN must be below MAX');
  if (electionMinMs <= heartbeatMs) {
    throw new UserError(
      '--election-timeout-ms: MIN must be above --heartbeat-ms, or followers time out between heartbeats',
    );
  }

  const clusterSecretFile = values.get('--cluster-secret-file');
  if (clusterSecretFile === '') throw new UserError('--cluster-secret-file must not be empty');
  const logLevel = values.get('--log-level') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new UserError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);

  const snapshotEveryValue = values.get('--snapshot-every') ?? '5000';
  if (
    !/^\d+$/.test(snapshotEveryValue) ||
    Number(snapshotEveryValue) < 1 ||
    Number(snapshotEveryValue) > 10_000_000
  ) {
    throw new UserError(
      `--snapshot-every must be a whole number of entries from 1 to 10000000, not '${snapshotEveryValue}'`,
    );
  }
  const snapshotEvery = Number(snapshotEveryValue);
  const sessionTtl = values.get('--session-ttl');
  const sessionTtlMs =
    sessionTtl === undefined
      ? DEFAULT_SESSION_TTL_MS
      : parseDuration('--session-ttl', sessionTtl, 1000, MAX_SESSION_TTL_MS);

  const loginFailuresPerMinute = count(
    '--login-failures-per-minute',
    values.get('--login-failures-per-minute'),
    5,
    1,
    1_000_000,
  );
  const writeRate = count('--write-rate', values.get('--write-rate'), 20, 1, 1_000_000);
  const writeBurst = count('--write-burst', values.get('--write-burst'), 40, 1, 1_000_000);
  const scryptN = count('--scrypt-n', values.get('--scrypt-n'), 2 ** 17, 1024, 2 ** 20);
  if ((scryptN & (scryptN - 1)) !== 0) {
    throw new UserError(`--scrypt-n must be a power of two, like 131072, not '${scryptN}'`);
  }

  return {
    id,
    host,
    port: p,
    dataDir,
    peers,
    httpPort,
    heartbeatMs,
    electionMinMs,
    electionMaxMs,
    clusterSecretFile,
    logLevel,
    snapshotEvery,
    sessionTtlMs,
    loginFailuresPerMinute,
    writeRate,
    writeBurst,
    scryptN,
  };
}
