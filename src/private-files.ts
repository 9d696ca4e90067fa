// Private files: a replica's data dir holds password hashes, session state and the whole chat history,
// so no other local user may read it. Directories are 0700 and files 0600, whatever the umask of the
// shell that started the server.
//
// Three layers: the server sets an owner-only umask at start (everything it creates later is private,
// SQLite's own files included); the places that create files pass explicit modes as well (in-process
// replicas in tests and tools never set the umask); and start-up tightens whatever an older version or
// a careless copy left readable.
import * as fs from 'node:fs';
import { join } from 'node:path';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** Group and other permission bits: any of them set means someone else may read or enter. */
const OTHERS = 0o077;

/** Owner-only umask for this process from now on; returns the previous one. Main thread only. */
export function restrictUmask(): number {
  return process.umask(0o077);
}

/** mkdir -p with mode 0700 for every directory it creates (existing ones are left as they are). */
export function mkdirPrivate(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Create `file` empty with mode 0600 if it is missing, and make it 0600 if it exists. Called before
 * SQLite opens a database: SQLite creates a new database 0644 (less the umask), and gives its -wal and
 * -shm files the mode of the database file, so a private main file keeps all three private.
 */
export function touchPrivate(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', PRIVATE_FILE_MODE));
  tightenPath(file);
}

export interface Tightened {
  path: string;
  /** The permission bits before, e.g. 0o644. */
  was: number;
  now: number;
}

/** Make one file 0600 (or directory 0700) if group or others have any access; undefined if already private. */
export function tightenPath(path: string): Tightened | undefined {
  const st = fs.lstatSync(path);
  // A symlink's own mode means nothing, and following one could chmod something outside the dir.
  if (st.isSymbolicLink()) return undefined;
  const was = st.mode & 0o777;
  if ((was & OTHERS) === 0) return undefined;
  const now = st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
  fs.chmodSync(path, now);
  return { path, was, now };
}

/** Make `dir` and everything under it private; returns what it changed (empty when all was private). */
export function tightenTree(dir: string): Tightened[] {
  const changed: Tightened[] = [];
  const visit = (path: string) => {
    const t = tightenPath(path);
    if (t) changed.push(t);
    const st = fs.lstatSync(path);
    if (!st.isDirectory()) return;
    for (const name of fs.readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return changed;
}

/** `0o644` → `'0644'`, for log lines. */
export function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** touchPrivate for a database path SQLite will open; in-memory and temporary databases have no file. */
export function touchPrivateDatabase(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  touchPrivate(path);
}
