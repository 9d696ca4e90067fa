// pino, JSON by default and pretty on a TTY. Every line of a replica carries node_id (and term, through
// setLogTerm) so that logs of five processes can be merged and read.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; nodeId?: string; pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? (process.stderr.isTTY === true && !process.env.CI);
  const base = opts.nodeId ? { node_id: opts.nodeId } : {};
  if (pretty) {
    return pino({
      level: opts.level ?? 'info',
      base,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level: opts.level ?? 'info', base }, pino.destination({ fd: 2, sync: false }));
}
