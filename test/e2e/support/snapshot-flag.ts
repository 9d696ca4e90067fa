// Whether this build's server accepts `--snapshot-every` (the snapshot e2e tests need a small
// compaction bound); the tests skip with this reason while it does not.
import { parseServerFlags } from '../../../src/server/flags.js';

export function snapshotFlagMissing(): string | undefined {
  try {
    parseServerFlags(['--id', 'x', '--port', '5555', '--snapshot-every', '100']);
    return undefined;
  } catch (err) {
    return `the server does not take --snapshot-every yet (${(err as Error).message})`;
  }
}
