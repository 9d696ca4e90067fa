// A pino destination for tests: every JSON line written to `sink` is parsed into `lines`.
import { Writable } from 'node:stream';

export function jsonLines(): { sink: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { sink, lines };
}
