// Replica logs: every line carries node_id and the current Raft term. The term is read by a pino mixin
// from a holder that follows the replica's role changes (RaftNode emits one on every term change), so
// no child logger has to be rebuilt and handed around when the term moves.
import pino, { type Logger } from 'pino';

export interface TermHolder {
  term: number | undefined;
}

export interface ReplicaLoggerOptions {
  level?: string;
  nodeId: string;
  pretty?: boolean;
  /** Where the lines go (default stderr); tests pass a stream. */
  destination?: pino.DestinationStream;
}

/** createLogger (src/logger.ts) plus `term` on every line. */
export function createReplicaLogger(opts: ReplicaLoggerOptions): { logger: Logger; term: TermHolder } {
  const term: TermHolder = { term: undefined };
  const pretty = opts.pretty ?? (process.stderr.isTTY === true && !process.env.CI && !opts.destination);
  const base = {
    level: opts.level ?? 'info',
    base: { node_id: opts.nodeId },
    // A field the call itself sets wins over the mixin's (pino's default merge), so no duplicate keys.
    mixin: () => (term.term === undefined ? {} : { term: term.term }),
  };
  if (pretty) {
    const logger = pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
    return { logger, term };
  }
  const logger = pino(base, opts.destination ?? pino.destination({ fd: 2, sync: false }));
  return { logger, term };
}

/** Keeps `holder.term` at the node's term. Returns the unsubscribe function. */
export function followTerm(
  holder: TermHolder,
  node: { status(): { term: number }; onRoleChange(cb: (r: { term: number }) => void): () => void },
): () => void {
  holder.term = node.status().term;
  return node.onRoleChange((r) => {
    holder.term = r.term;
  });
}
