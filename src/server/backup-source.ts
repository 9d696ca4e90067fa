// The server side of ClusterService.Backup: a consistent copy of this replica's chat state as of one
// applied index (its own applied state: leader, follower or learner alike).
//
// The copy is the chat side's snapshot bytes, made exactly as a background snapshot is
// (writeChatSnapshot, src/chat/snapshots.ts): a second connection's read
// transaction pins one state of the database, reads the applied index in it, and copies the chat
// tables a few hundred rows per event-loop turn, so Raft keeps applying and answering meanwhile. The
// copy goes to a temporary file in the snapshot directory; once open for streaming it is unlinked, so
// a crash while streaming leaves nothing behind, and a crash while copying leaves a `backup-*.db` that
// the next start removes.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { type CopyState, copyState } from '../backup/copy-state.js';
import { ChatError, status } from '../chat/errors.js';
import { writeChatSnapshot } from '../chat/snapshots.js';
import type { Logger } from '../logger.js';

/** One copy, ready to stream. `close` releases it (the file is already unlinked). */
export interface BackupCopy extends CopyState {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

const PREFIX = 'backup-';
const SUFFIX = '.db';

export class BackupSource {
  private running = 0;

  constructor(
    private readonly opts: {
      /** The replica's SQLite file. */
      dbFile: string;
      /** Where the temporary copies go (the snapshot directory: same disk, private). */
      dir: string;
      /** Copies that may be made or streamed at once (default 1): each costs a copy's size on disk. */
      concurrency?: number;
      logger?: Logger;
    },
  ) {
    for (const f of fs.readdirSync(opts.dir)) {
      if (f.startsWith(PREFIX) && f.endsWith(SUFFIX)) fs.rmSync(join(opts.dir, f), { force: true });
    }
  }

  /** Makes a copy at the current applied index; the caller streams it and then closes it. */
  async take(): Promise<BackupCopy> {
    if (this.running >= (this.opts.concurrency ?? 1)) {
      throw new ChatError(
        status.RESOURCE_EXHAUSTED,
        'A backup is already running on this replica; retry when it is done, or back up another replica.',
      );
    }
    this.running++;
    let released = false;
    const release = () => {
      if (!released) this.running--;
      released = true;
    };
    const file = join(this.opts.dir, `${PREFIX}${randomBytes(6).toString('hex')}${SUFFIX}`);
    try {
      const began = performance.now();
      const copied = await writeChatSnapshot(this.opts.dbFile, file, { accept: () => true });
      if (!copied) throw new Error('the database has no applied index');
      const state = await copyState(file);
      if (state.lastApplied !== copied.index) {
        throw new Error(`the copy reads index ${state.lastApplied}, not ${copied.index}`);
      }
      const fh = await fs.promises.open(file, 'r');
      fs.rmSync(file, { force: true });
      const { size } = await fh.stat();
      this.opts.logger?.info(
        {
          index: state.lastApplied,
          bytes: size,
          ms: Math.round(performance.now() - began),
          maxStepMs: Math.round((copied.stats?.maxStepMs ?? 0) * 10) / 10,
        },
        'backup copy made',
      );
      return {
        ...state,
        size,
        read: async (offset, length) => {
          const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
          let got = 0;
          while (got < buf.length) {
            const { bytesRead } = await fh.read(buf, got, buf.length - got, offset + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          return buf.subarray(0, got);
        },
        close: async () => {
          release();
          await fh.close().catch(() => undefined);
        },
      };
    } catch (err) {
      release();
      fs.rmSync(file, { force: true });
      throw err;
    }
  }
}
