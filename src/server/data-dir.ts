// The data dir of one replica. A marker file names the node that owns it, so that starting a server on
// another node's directory, or on a directory that is not ours at all, fails with one clear line instead
// of quietly mixing states.
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { PRIVATE_FILE_MODE, mkdirPrivate, tightenPath } from '../private-files.js';
import { UserError } from '../user-error.js';

export const MARKER = 'quorum-chat.json';
const FORMAT = 1;

interface Marker {
  app: 'quorum-chat';
  format: number;
  node_id: string;
}

/**
 * Creates the directory (and the marker) when missing or empty; checks the marker otherwise.
 * Returns `fresh: true` when the replica starts from nothing (bootstrap or join).
 */
export function prepareDataDir(dir: string, nodeId: string): { dir: string; fresh: boolean } {
  const abs = resolve(dir);
  let entries: string[] = [];
  try {
    const st = fs.statSync(abs);
    if (!st.isDirectory()) throw new UserError(`data dir ${abs} is not a directory`);
    entries = fs.readdirSync(abs);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new UserError(`cannot read data dir ${abs}: ${code ?? err}`);
  }
  const markerPath = join(abs, MARKER);
  if (entries.length === 0) {
    try {
      mkdirPrivate(abs);
      // An empty dir that already existed keeps its mode from mkdir: make it private too.
      tightenPath(abs);
      const marker: Marker = { app: 'quorum-chat', format: FORMAT, node_id: nodeId };
      fs.writeFileSync(markerPath, `${JSON.stringify(marker)}\n`, { flag: 'wx', mode: PRIVATE_FILE_MODE });
    } catch (err) {
      throw new UserError(`cannot create data dir ${abs}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    return { dir: abs, fresh: true };
  }
  if (!entries.includes(MARKER)) {
    throw new UserError(`data dir ${abs} is not empty and is not a quorum-chat data dir (no ${MARKER})`);
  }
  let marker: Partial<Marker>;
  try {
    marker = JSON.parse(fs.readFileSync(markerPath, 'utf8')) as Partial<Marker>;
  } catch {
    throw new UserError(`data dir ${abs} is corrupt: ${MARKER} is unreadable`);
  }
  if (marker?.app !== 'quorum-chat') throw new UserError(`data dir ${abs} is corrupt: ${MARKER} is not ours`);
  if (marker.format !== FORMAT)
    throw new UserError(`data dir ${abs} has format ${marker.format}, expected ${FORMAT}`);
  if (marker.node_id !== nodeId) {
    throw new UserError(`data dir ${abs} belongs to node '${marker.node_id}', not '${nodeId}'`);
  }
  return { dir: abs, fresh: false };
}

/** Undo a fresh data dir after a failed start (e.g. port in use), so a retry still starts fresh. */
export function discardFreshDataDir(dir: string, files: string[]): void {
  for (const f of [MARKER, ...files]) fs.rmSync(join(dir, f), { force: true });
  try {
    fs.rmdirSync(dir);
  } catch {
    // Not empty (someone else's file) or already gone: leave it.
  }
}
