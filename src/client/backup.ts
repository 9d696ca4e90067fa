// `quorum-chat backup --server HOST:PORT --out FILE`: streams ClusterService.Backup (a consistent copy
// of one replica's chat state as of one applied index) into a backup file (src/backup/format.ts).
// The file is written as FILE.tmp, checked, then renamed, so FILE is either a whole backup or absent.
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { BackupWriter, verifyBackupFile } from '../backup/format.js';
import { type CommandSpec, parseFlags, required } from '../cli-flags.js';
import { services } from '../proto.js';
import { SECRET_RULE } from '../raft/cluster-secret.js';
import { TLS_CA_FLAG, clientChannelCredentials } from '../tls/credentials.js';
import { UserError } from '../user-error.js';
import { readSecret } from './admin.js';
import { toClientError } from './errors.js';
import { Progress } from './progress.js';

export const backupCommand: CommandSpec = {
  name: 'backup',
  synopsis: ['backup --server HOST:PORT --out FILE [--cluster-secret-file FILE] [--tls-ca-file FILE]'],
  about:
    'Copies the chat state of one replica (any member: its own applied state) as of one applied index ' +
    'into FILE, and prints that index and its state_digest. Restore it with `quorum-chat restore`.',
  flags: {
    server: { short: 's', value: 'HOST:PORT', help: 'the replica to copy (required)' },
    out: {
      short: 'o',
      value: 'FILE',
      help: 'the backup file to write (required; written as FILE.tmp first)',
    },
    'cluster-secret-file': { value: 'FILE', help: 'the cluster secret (default: see below)' },
    'data-dir': {
      value: 'DIR',
      help: 'the data dir of a replica on this machine: the secret is cluster.secret in its parent',
    },
    ...TLS_CA_FLAG,
  },
  notes: `The cluster secret is --cluster-secret-file, or else ${SECRET_RULE}.`,
};

/** The result of one Backup stream written to a file. */
export interface BackupResult {
  file: string;
  bytes: number;
  lastApplied: number;
  stateDigest: string;
}

/** cluster.proto's BackupChunk, as the client decodes it. */
export interface BackupChunk {
  data: Buffer;
  offset: number;
  done: boolean;
  last_applied: number;
  state_digest: string;
}

/**
 * The ClusterService client of this command: the one place its channel is made, so that TLS
 * (`--tls-ca-file`) only has to pass other credentials here.
 */
export function clusterChannel(address: string, credentials?: grpc.ChannelCredentials): grpc.Client {
  const Ctor = services().ClusterService;
  return new Ctor(address, credentials ?? grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 1 << 20,
  });
}

/**
 * Streams a backup from `address` into `out`: FILE.tmp first, checked, then renamed. On any failure
 * FILE.tmp is removed and FILE is untouched. `onProgress` hears the bytes so far and the total.
 */
export async function fetchBackup(opts: {
  address: string;
  secret: string;
  out: string;
  credentials?: grpc.ChannelCredentials;
  onProgress?: (bytes: number, total: number | undefined) => void;
  /** Abort the transfer (e.g. on SIGINT). */
  signal?: AbortSignal;
}): Promise<BackupResult> {
  const tmp = `${opts.out}.tmp`;
  const writer = await BackupWriter.create(tmp);
  const client = clusterChannel(opts.address, opts.credentials);
  try {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${opts.secret}`);
    const call = (
      client as unknown as { Backup(req: object, md: grpc.Metadata): grpc.ClientReadableStream<BackupChunk> }
    ).Backup({}, md);
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener('abort', onAbort);
    let total: number | undefined;
    let last: BackupChunk | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        let failed = false;
        const fail = (err: unknown) => {
          if (failed) return;
          failed = true;
          call.cancel();
          reject(err);
        };
        call.on('metadata', (m: grpc.Metadata) => {
          const v = Number(m.get('x-backup-bytes')[0]);
          total = Number.isSafeInteger(v) && v >= 0 ? v : undefined;
          opts.onProgress?.(0, total);
        });
        // One chunk at a time: the stream is paused while a chunk is written, so memory stays flat.
        let writing = Promise.resolve();
        call.on('data', (chunk: BackupChunk) => {
          call.pause();
          writing = writing
            .then(async () => {
              if (failed) return;
              if (last?.done) throw new Error('the server sent data after its last chunk');
              if (chunk.offset !== writer.written) {
                throw new Error(
                  `the server sent bytes at offset ${chunk.offset}, expected ${writer.written}`,
                );
              }
              await writer.append(chunk.data);
              last = chunk;
              opts.onProgress?.(writer.written, total);
              call.resume();
            })
            .catch(fail);
        });
        call.on('error', fail);
        call.on('end', () => {
          writing.then(() => {
            if (failed) return;
            if (!last?.done) fail(new Error('the stream ended before the last chunk'));
            else resolve();
          }, fail);
        });
      });
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (!last) throw new Error('the stream ended before the last chunk');
    if (total !== undefined && total !== writer.written) {
      throw new Error(`the server announced ${total} bytes but sent ${writer.written}`);
    }
    const header = await writer.finish({ lastApplied: last.last_applied, stateDigest: last.state_digest });
    await verifyBackupFile(tmp);
    fs.renameSync(tmp, opts.out);
    return {
      file: opts.out,
      bytes: header.length,
      lastApplied: header.lastApplied,
      stateDigest: header.stateDigest,
    };
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    client.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const v = parseFlags(backupCommand, argv);
  const address = required(backupCommand, v, 'server');
  if (address.includes(',')) {
    throw new UserError(
      "backup: --server takes one replica's HOST:PORT (each replica holds the whole state)",
    );
  }
  const out = required(backupCommand, v, 'out');
  if (fs.existsSync(out))
    throw new UserError(`backup: ${out} already exists; choose another --out or remove it`);
  const secret = readSecret(
    v['cluster-secret-file'] as string | undefined,
    v['data-dir'] as string | undefined,
  );
  const progress = new Progress(process.stderr, 'backup');
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await fetchBackup({
      address,
      secret,
      out,
      credentials: clientChannelCredentials(v['tls-ca-file'] as string | undefined),
      signal: abort.signal,
      onProgress: (bytes, total) => progress.update(bytes, total),
    });
    progress.done();
    console.log(`wrote ${r.file}: ${r.bytes} bytes of chat state from ${address}`);
    console.log(`last_applied: ${r.lastApplied}`);
    console.log(`state_digest: ${r.stateDigest}`);
    return 0;
  } catch (err) {
    progress.done();
    if (abort.signal.aborted) throw new UserError(`backup: interrupted; ${out} was not written`);
    if (err instanceof UserError) throw err;
    const e = typeof (err as { code?: unknown }).code === 'number' ? toClientError(err) : undefined;
    throw new UserError(
      e ? `backup: ${e.codeName}: ${e.message}` : `backup: ${(err as Error).message}; ${out} was not written`,
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
