// `quorum-chat server` flags (API.md §1), parsed by node:util parseArgs from one table (cli-flags.ts):
// adding a flag is one entry in SERVER_FLAGS and one line in parseServerFlags' result. Every problem is
// a UserError: one line, exit 1, no stack; --help prints the usage generated from the table.
import { MAX_SESSION_TTL_MS } from '../chat/tokens.js';
import { type CommandSpec, parseFlags, required } from '../cli-flags.js';
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
  /** An fsync slower than this is logged as a warning and counted (etcd's slow-disk warning). */
  slowFsyncMs: number;
  /** The log's group commit (ready-executor.ts FlushPolicy): wait this long for more writes (0: next turn)… */
  flushDelayUs: number;
  /** …unless this many entries wait already. */
  flushMaxEntries: number;
  /** How long a session lives without use (ms); every use extends it. */
  sessionTtlMs: number;
  /** API.md Limits: failed Logins allowed per username per minute, cluster-wide. */
  loginFailuresPerMinute: number;
  /** API.md Limits: sustained writes per second per user, and the burst, cluster-wide. */
  writeRate: number;
  writeBurst: number;
  /** scrypt's N for new password hashes (a power of two); OWASP's 2^17 unless lowered (tests). */
  scryptN: number;
  /** TLS files (read and checked by tls/tls-files.ts before anything binds). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const SERVER_FLAGS = {
  id: { value: 'ID', help: 'this replica’s id, unique in the cluster (required)' },
  port: { value: 'PORT', help: 'gRPC port for clients, tools and peers (required)' },
  host: { value: 'HOST', default: '127.0.0.1', help: 'address to bind and to advertise to the cluster' },
  'data-dir': { value: 'DIR', help: 'where the log, snapshots and chat state live (default: ./data/ID)' },
  peers: {
    value: 'HOST:PORT,...',
    help: 'members to join through when the data dir is empty (ignored as a hint otherwise)',
  },
  'http-port': { value: 'PORT', help: 'web client, /cluster, /metrics, /healthz (default: PORT+1000)' },
  'heartbeat-ms': { value: 'MS', default: '50', help: 'leader heartbeat interval' },
  'election-timeout-ms': { value: 'MIN-MAX', default: '150-300', help: 'randomized election timeout' },
  'cluster-secret-file': {
    value: 'FILE',
    help: 'the shared cluster secret (default: cluster.secret in the parent of the data dir)',
  },
  'log-level': { value: 'LEVEL', default: 'info', help: LOG_LEVELS.join(', ') },
  'snapshot-every': {
    value: 'N',
    default: '5000',
    help: 'take a snapshot and compact the log every N applied entries',
  },
  'slow-fsync-ms': {
    value: 'MS',
    default: '100',
    help: 'log a warning (and count it in /metrics) when one fsync takes longer',
  },
  'flush-delay-us': {
    value: 'US',
    default: '0',
    help: 'wait up to this many microseconds for more writes before an fsync (0: the next event-loop turn; timers have about 1 ms resolution)',
  },
  'flush-max-entries': {
    value: 'N',
    default: '512',
    help: 'fsync without waiting for --flush-delay-us once this many log entries wait',
  },
  'session-ttl': {
    value: 'DURATION',
    default: '30d',
    help: 'how long a session lives without use (d, h, m, s, ms or bare milliseconds); every use extends it',
  },
  'login-failures-per-minute': {
    value: 'N',
    default: '5',
    help: 'failed Logins allowed per username per minute, cluster-wide',
  },
  'write-rate': { value: 'N', default: '20', help: 'writes per second per user, cluster-wide' },
  'write-burst': { value: 'N', default: '40', help: 'burst of writes per user above --write-rate' },
  'scrypt-n': {
    value: 'N',
    default: '131072',
    help: "scrypt's cost N for new password hashes (a power of two; OWASP's 2^17)",
  },
  'tls-cert-file': { value: 'FILE', help: 'serve gRPC and HTTP over TLS with this certificate (PEM)' },
  'tls-key-file': { value: 'FILE', help: 'the private key of --tls-cert-file (PEM)' },
  'tls-ca-file': {
    value: 'FILE',
    help: "the CA peers' certificates must chain to: replicas talk mutual TLS (needs the two above)",
  },
} satisfies CommandSpec['flags'];

export const serverCommand: CommandSpec = {
  name: 'server',
  synopsis: [
    'server --id ID --port PORT [--host 127.0.0.1] [--data-dir DIR] [--peers HOST:PORT,...]',
    '       [--http-port PORT] [--heartbeat-ms 50] [--election-timeout-ms 150-300]',
    '       [--cluster-secret-file FILE] [--log-level info]',
    '       [--tls-cert-file FILE --tls-key-file FILE [--tls-ca-file FILE]] [...]',
  ],
  about:
    'Runs one Raft replica. An empty data dir without --peers bootstraps a new one-member cluster; an ' +
    'empty data dir with --peers joins the running cluster (learner, then voter); an existing data dir ' +
    'restarts from it. SIGTERM or SIGINT stop it gracefully (a leader hands over first).',
  flags: SERVER_FLAGS,
};

function port(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new UserError(`${flag} must be a port number from 1 to 65535, not '${value}'`);
  }
  return Number(value);
}

function count(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UserError(`${flag} must be a whole number from ${min} to ${max}, not '${value}'`);
  }
  return Number(value);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration like `30d`, `12h`, `90m`, `45s`, `1500ms` or bare milliseconds, from min to max ms. */
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

function positiveInt(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 3_600_000) {
    throw new UserError(`${flag} must be a positive whole number of milliseconds, not '${value}'`);
  }
  return Number(value);
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
  const v = parseFlags(serverCommand, argv) as Record<string, string | undefined>;
  const str = (name: keyof typeof SERVER_FLAGS) => v[name];

  const id = required(serverCommand, v, 'id');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) {
    throw new UserError(`--id must be 1 to 64 characters of letters, digits, '_', '.' or '-', not '${id}'`);
  }
  const p = port('--port', required(serverCommand, v, 'port'));
  const host = str('host')!;
  if (!/^[A-Za-z0-9_.:-]+$/.test(host)) throw new UserError(`--host '${host}' is not a host name or address`);
  const dataDir = str('data-dir') ?? `./data/${id}`;
  if (dataDir === '') throw new UserError('--data-dir must not be empty');
  const peersValue = str('peers') ?? '';
  const peers = peersValue === '' ? [] : peersValue.split(',').map((a) => checkAddress('--peers', a.trim()));

  let httpPort: number;
  const httpValue = str('http-port');
  if (httpValue !== undefined) httpPort = port('--http-port', httpValue);
  else {
    httpPort = p + 1000;
    if (httpPort > 65535)
      throw new UserError(`--port ${p} leaves no default HTTP port (PORT+1000); pass --http-port`);
  }
  if (httpPort === p) throw new UserError('--http-port must differ from --port');

  const heartbeatMs = positiveInt('--heartbeat-ms', str('heartbeat-ms')!);
  const election = str('election-timeout-ms')!;
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

  const clusterSecretFile = str('cluster-secret-file');
  if (clusterSecretFile === '') throw new UserError('--cluster-secret-file must not be empty');
  const logLevel = str('log-level')!;
  if (!LOG_LEVELS.includes(logLevel))
    throw new UserError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);

  const snapshotEveryValue = str('snapshot-every')!;
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
  const slowFsyncMs = positiveInt('--slow-fsync-ms', str('slow-fsync-ms')!);
  const flushDelayUs = count('--flush-delay-us', str('flush-delay-us')!, 0, 1_000_000);
  const flushMaxEntries = count('--flush-max-entries', str('flush-max-entries')!, 1, 1_000_000);
  const sessionTtlMs = parseDuration('--session-ttl', str('session-ttl')!, 1000, MAX_SESSION_TTL_MS);
  const loginFailuresPerMinute = count(
    '--login-failures-per-minute',
    str('login-failures-per-minute')!,
    1,
    1_000_000,
  );
  const writeRate = count('--write-rate', str('write-rate')!, 1, 1_000_000);
  const writeBurst = count('--write-burst', str('write-burst')!, 1, 1_000_000);
  const scryptN = count('--scrypt-n', str('scrypt-n')!, 1024, 2 ** 20);
  if ((scryptN & (scryptN - 1)) !== 0) {
    throw new UserError(`--scrypt-n must be a power of two, like 131072, not '${scryptN}'`);
  }
  const tlsFile = (name: 'tls-cert-file' | 'tls-key-file' | 'tls-ca-file') => {
    const f = str(name);
    if (f === '') throw new UserError(`--${name} must not be empty`);
    return f;
  };

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
    slowFsyncMs,
    flushDelayUs,
    flushMaxEntries,
    sessionTtlMs,
    loginFailuresPerMinute,
    writeRate,
    writeBurst,
    scryptN,
    tlsCertFile: tlsFile('tls-cert-file'),
    tlsKeyFile: tlsFile('tls-key-file'),
    tlsCaFile: tlsFile('tls-ca-file'),
  };
}
