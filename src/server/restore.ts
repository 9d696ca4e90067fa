// `quorum-chat restore --from FILE --id ID --port PORT [--data-dir DIR]`: turns a backup file
// (src/backup/format.ts) into the data dir of a new one-member cluster, then serves it.
//
// Order matters, so that a bad file never leaves a data dir behind:
// 1. the file is verified whole (magic, version, length, checksum) before anything is created;
// 2. the new data dir is built in a temporary directory next to it: the copy is extracted, its applied
//    index and state_digest are recomputed and compared with the header, the chat tables are loaded
//    into the replica's database, and the Raft log is reset to start after the copy's index, as if a
//    snapshot at that index had been installed, with this replica as the only voter (term 1);
// 3. the temporary directory is renamed into place: the data dir appears whole or not at all.
// Then `quorum-chat server` runs on it as on any existing data dir (it restarts from it and, as the
// only voter, elects itself); other replicas join it as usual, with --peers of its address.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { SnapshotMeta } from '../../machines/protocol.js';
import { copyState } from '../backup/copy-state.js';
import { BackupFileError, type BackupHeader, extractPayload, verifyBackupFile } from '../backup/format.js';
import { type CommandSpec, parseFlags, required } from '../cli-flags.js';
import { mkdirPrivate, restrictUmask } from '../private-files.js';
import { loadClusterSecret, secretPath } from '../raft/cluster-secret.js';
import type { SnapshotPayload } from '../raft/interfaces.js';
import { FileSnapshotStore, fsyncPath } from '../raft/snapshot-store.js';
import { UserError } from '../user-error.js';
import { prepareDataDir } from './data-dir.js';
import { SERVER_FLAGS, parseServerFlags } from './flags.js';
import { portIsFree } from './local-cluster.js';
import { DB_FILE, SNAPSHOT_DIR, openDatabase, openStores } from './replica.js';

const { peers: _peers, ...serverFlagsButPeers } = SERVER_FLAGS;

export const restoreCommand: CommandSpec = {
  name: 'restore',
  synopsis: [
    'restore --from FILE --id ID --port PORT [--host 127.0.0.1] [--data-dir DIR]',
    '        [--cluster-secret-file FILE] [--no-start] [server flags...]',
  ],
  about:
    'Checks a backup file whole, builds from it the data dir of a new one-member cluster (this replica ' +
    'the only voter, its log starting after the backup’s index), then serves it as `quorum-chat server` ' +
    'would. Other replicas join it as usual (server --peers HOST:PORT of this one). The data dir must not ' +
    'exist or be empty; a corrupt or truncated file is refused and leaves no data dir.',
  flags: {
    from: { value: 'FILE', help: 'the backup file (from `quorum-chat backup`) (required)' },
    'no-start': {
      type: 'boolean',
      help: 'build the data dir, print the `quorum-chat server` command that serves it, and exit',
    },
    ...serverFlagsButPeers,
  },
  notes:
    'The new cluster uses --cluster-secret-file, or else cluster.secret in the parent of the data dir, ' +
    'created if missing (as when a server bootstraps). Every server flag but --peers is accepted and ' +
    'passed on to the server.',
};

/** argv without restore's own flags: what `quorum-chat server` gets. */
function serverArgvOf(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-start' || a.startsWith('--from=')) continue;
    if (a === '--from') {
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

export interface RestoreResult {
  dataDir: string;
  header: BackupHeader;
  address: string;
}

/**
 * Verifies `from` and builds the data dir of a new one-member cluster at `dataDir` (which must not
 * exist, or be empty). Throws UserError (one line) and leaves no data dir on any failure.
 */
export async function restoreDataDir(opts: {
  from: string;
  id: string;
  host: string;
  port: number;
  dataDir: string;
  clusterSecretFile?: string;
}): Promise<RestoreResult> {
  const target = resolve(opts.dataDir);
  refuseExisting(target);
  const header = await verifyBackupFile(opts.from).catch((err: unknown) => {
    throw err instanceof BackupFileError
      ? new BackupFileError(`${opts.from}: ${err.message}`)
      : new UserError(`cannot read ${opts.from}: ${(err as Error).message}`);
  });
  if (header.lastApplied < 1) throw new BackupFileError(`${opts.from}: the backup holds no applied state`);

  const parent = dirname(target);
  const parentExisted = fs.existsSync(parent);
  const secretFile = secretPath({ secretFile: opts.clusterSecretFile, dataDir: target });
  const secretExisted = fs.existsSync(secretFile);
  const tmp = join(parent, `.${basename(target)}.restoring-${randomBytes(4).toString('hex')}`);
  try {
    mkdirPrivate(parent);
    prepareDataDir(tmp, opts.id);
    const snapshots = join(tmp, SNAPSHOT_DIR);
    mkdirPrivate(snapshots);
    const copy = join(snapshots, 'backup.restoring');
    await extractPayload(opts.from, header, copy);
    await checkCopy(opts.from, copy, header);

    const address = `${opts.host}:${opts.port}`;
    // The new cluster: its own history starts at term 1, after the copy's index, with this replica as
    // its only voter. Its snapshot is the copy itself (a backup's payload is the chat side's snapshot
    // bytes), so a replica that joins later is sent it.
    const meta: SnapshotMeta = {
      index: header.lastApplied,
      term: 1,
      config: { members: [{ id: opts.id, address, voter: true }] },
    };
    const store = new FileSnapshotStore(snapshots);
    try {
      store.install(meta, copy);
      const secret = loadClusterSecret({ secretFile: opts.clusterSecretFile, dataDir: target, create: true });
      loadInto(tmp, { id: opts.id, secret, snapshot: store.payload() as SnapshotPayload, header });
    } finally {
      store.close();
    }

    refuseExisting(target);
    if (fs.existsSync(target)) fs.rmdirSync(target); // empty: checked just above
    fs.renameSync(tmp, target);
    fsyncPath(parent);
    return { dataDir: target, header, address };
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!secretExisted) fs.rmSync(secretFile, { force: true });
    if (!parentExisted) {
      try {
        fs.rmdirSync(parent);
      } catch {
        // Not empty (someone else's file meanwhile): leave it.
      }
    }
    if (err instanceof UserError) throw err;
    throw new UserError(`restore failed, no data dir was left: ${(err as Error).message}`);
  }
}

function refuseExisting(target: string): void {
  let entries: string[];
  try {
    if (!fs.statSync(target).isDirectory()) throw new UserError(`${target} exists and is not a directory`);
    entries = fs.readdirSync(target);
  } catch (err) {
    if (err instanceof UserError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new UserError(`cannot read ${target}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (entries.length > 0) {
    throw new UserError(
      `data dir ${target} is not empty; restore builds a new data dir: pass a --data-dir that does not exist`,
    );
  }
}

/** The extracted copy must be a sound database whose index and digest are the header's. */
async function checkCopy(from: string, copy: string, header: BackupHeader): Promise<void> {
  let state: Awaited<ReturnType<typeof copyState>>;
  try {
    state = await copyState(copy, { check: true });
  } catch (err) {
    throw new BackupFileError(`${from}: the backup's chat state is unreadable (${(err as Error).message})`);
  }
  if (state.lastApplied !== header.lastApplied) {
    throw new BackupFileError(
      `${from}: the backup's chat state is at index ${state.lastApplied}, its header says ${header.lastApplied}`,
    );
  }
  if (state.stateDigest !== header.stateDigest) {
    throw new BackupFileError(
      `${from}: the backup's chat state has digest ${state.stateDigest.slice(0, 12)}…, its header says ${header.stateDigest.slice(0, 12)}…`,
    );
  }
}

/**
 * The replica's database, as after installing the snapshot: the chat tables from the copy, the log
 * reset to it (empty, starting after its index), term 1. Checked again on the database itself.
 */
function loadInto(
  dir: string,
  o: { id: string; secret: string; snapshot: SnapshotPayload; header: BackupHeader },
): void {
  const db = openDatabase(dir);
  try {
    const { logStore, store } = openStores(db, { id: o.id, clusterSecret: o.secret, dataDir: dir });
    try {
      store.restore(o.snapshot);
      logStore.resetToSnapshot(o.snapshot.meta);
      logStore.write({ hardState: { term: o.snapshot.meta.term, votedFor: null } });
      logStore.flush(() => undefined);
      if (store.appliedIndex() !== o.header.lastApplied || store.stateDigest() !== o.header.stateDigest) {
        throw new Error(`the restored ${DB_FILE} does not match the backup`);
      }
    } finally {
      store.close();
      logStore.close();
    }
  } finally {
    db.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const v = parseFlags(restoreCommand, argv);
  const from = required(restoreCommand, v, 'from');
  const serverArgv = serverArgvOf(argv);
  // The server's own checks (id, port, host, timers...), so restore accepts exactly what it will run.
  const config = parseServerFlags(serverArgv);
  restrictUmask();
  // The port goes into the new cluster's configuration: if it is taken now, the server could not
  // start and the data dir would name an address it cannot serve. Say so before building anything.
  if (!v['no-start'] && !(await portIsFree(config.port, config.host))) {
    throw new UserError(`restore: port ${config.port} on ${config.host} is in use; choose another --port`);
  }
  const r = await restoreDataDir({
    from,
    id: config.id,
    host: config.host,
    port: config.port,
    dataDir: config.dataDir,
    clusterSecretFile: config.clusterSecretFile,
  }).catch((err: unknown) => {
    if (err instanceof UserError) throw new UserError(`restore: ${err.message}`);
    throw err;
  });
  const said = `restored ${from} into ${r.dataDir}: last_applied ${r.header.lastApplied}, state_digest ${r.header.stateDigest}; a new one-member cluster with ${config.id} (${r.address}) as its only voter`;
  if (v['no-start']) {
    console.log(said);
    console.log(`start it with: quorum-chat server ${serverArgv.join(' ')}`);
    return 0;
  }
  console.error(said);
  return (await import('./main.js')).main(serverArgv);
}
