// A test double (test/support/): the ReadyExecutor's log (ReadyLog) over a MemoryLogStore that notes
// when each flush starts (production's SQLite store blocks in its fsync there) and when it completes,
// so that tests can order sends and flushes.

import type { ReadyLog } from '../../src/raft/ready-executor.js';
import type { MemoryLogStore } from './memory-log-store.js';

export function notingLog(
  store: MemoryLogStore,
  note: (what: 'flush starts' | 'flush done') => void,
): ReadyLog {
  return {
    write: (batch) => store.write(batch),
    lastIndex: () => store.lastIndex(),
    termAt: (index) => store.termAt(index),
    entries: (from, to, max) => store.entries(from, to, max),
    flush: (done) => {
      note('flush starts');
      store.flush(() => {
        note('flush done');
        done();
      });
    },
  };
}
