// Where a single client's write spends its time, on the real five-process cluster of `make bench`
// (figures only, never assertions).
//
//   npm run --silent build && npx tsx scripts/write-timeline.ts [--single-seconds 6] [--calls 500]
//
// Runs `bin/quorum-chat bench` (single-client phase only) with scripts/write-timeline-preload.mjs
// loaded into every replica, which timestamps each step of the write path on each process. Then, for
// the last --calls writes, it prints the leader's median timeline of one call (from the call reaching
// it to its reply), a follower's median timeline of one AppendEntries (receipt, flush, answer), and
// each replica's flush times. Each process is timed on its own clock, so steps are compared within a
// process, never across. docs/design/write-path.md, "Where a single write's time goes", reads it.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'single-seconds': { type: 'string', default: '6' },
    calls: { type: 'string', default: '500' },
  },
});
const seconds = Number(values['single-seconds']);
const calls = Number(values.calls);
const root = resolve(import.meta.dirname, '..');
const dir = fs.mkdtempSync(join(os.tmpdir(), 'qc-timeline-'));

type Mark = [label: string, at: number];

const run = spawnSync(
  join(root, 'bin/quorum-chat'),
  [
    'bench',
    '--skip-reads',
    '--seconds',
    '1',
    '--single-seconds',
    String(seconds),
    '--failover-trials',
    '0',
    '--out',
    join(dir, 'bench.json'),
  ],
  {
    env: {
      ...process.env,
      QC_NODE_ARGS: `--import ${join(root, 'scripts/write-timeline-preload.mjs')}`,
      QC_TIMELINE_DIR: dir,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  },
);
if (run.status !== 0) {
  console.error(run.stdout);
  throw new Error(`bench exited with ${run.status}`);
}
const singleLine = run.stdout.split('\n').find((l) => /p50 .* writes\/s/.test(l));
console.log(`bench, single client (driver's view): ${singleLine?.trim() ?? '(no single-client line)'}`);

const traces = fs
  .readdirSync(dir)
  .filter((f) => f.startsWith('timeline-'))
  .map((f) => ({
    pid: f.replace(/\D/g, ''),
    marks: fs
      .readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Mark),
  }))
  .filter((t) => t.marks.length > 0);
const count = (t: { marks: Mark[] }, label: string) => t.marks.filter(([l]) => l === label).length;
const leader = traces.reduce((a, b) => (count(b, 'propose') > count(a, 'propose') ? b : a));
const followers = traces.filter(
  (t) => t !== leader && t.marks.some(([l]) => l.startsWith('rx:AppendEntries:')),
);

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))];
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

/**
 * For windows [from, to) of marks, the median offset of each step, by occurrence within the window
 * ("flush #2" is the window's second flush); steps present in under 30% of the windows are left out.
 */
function medianTimeline(marks: Mark[], windows: [number, number][], name: (label: string) => string) {
  const offsets = new Map<string, number[]>();
  for (const [from, to] of windows) {
    const t0 = marks[from][1];
    const seen = new Map<string, number>();
    for (let i = from; i < to; i++) {
      const step = name(marks[i][0]);
      const n = (seen.get(step) ?? 0) + 1;
      seen.set(step, n);
      const key = n === 1 ? step : `${step} #${n}`;
      offsets.set(key, [...(offsets.get(key) ?? []), marks[i][1] - t0]);
    }
  }
  const rows = [...offsets]
    .filter(([, xs]) => xs.length >= windows.length * 0.3)
    .map(([step, xs]) => ({ step, n: xs.length, p50: quantile(xs, 0.5), p90: quantile(xs, 0.9) }))
    .sort((a, b) => a.p50 - b.p50);
  for (const r of rows) {
    console.log(
      `  ${r.step.padEnd(34)} ${ms(r.p50).padStart(9)}  (p90 ${ms(r.p90)}, in ${r.n} of ${windows.length})`,
    );
  }
}

// The leader: one SendMessage from its arrival to its reply (the single client's calls are sequential).
const lm = leader.marks;
const callWindows: [number, number][] = [];
for (let i = 0; i < lm.length; i++) {
  if (lm[i][0] !== 'call:SendMessage') continue;
  const end = lm.findIndex(([l], j) => j > i && (l === 'reply' || l.startsWith('call:')));
  if (end > i && lm[end][0] === 'reply') callWindows.push([i, end + 1]);
}
const lastCalls = callWindows.slice(-calls);
if (lastCalls.length === 0) throw new Error('no SendMessage reached the leader: nothing to show');
console.log(
  `\nleader (pid ${leader.pid}): one SendMessage, from its arrival to its reply, last ${lastCalls.length} calls`,
);
medianTimeline(lm, lastCalls, (l) =>
  l.startsWith('tx:')
    ? 'tx (a Raft batch to a peer)'
    : l.startsWith('rx:AppendEntriesResponse')
      ? 'rx AppendEntriesResponse'
      : l,
);

// A follower: one AppendEntries carrying entries, until the next AppendEntries.
for (const f of followers.slice(0, 2)) {
  const fm = f.marks;
  const starts = fm.flatMap(([l], i) => (/^rx:AppendEntries:[^:]+:[1-9]/.test(l) ? [i] : []));
  const nextAppend = (s: number) => {
    const j = fm.findIndex(([l], i) => i > s && l.startsWith('rx:AppendEntries:'));
    return j < 0 ? fm.length : j;
  };
  const windows = starts.slice(-calls).map((s) => [s, nextAppend(s)] as [number, number]);
  console.log(
    `\nfollower (pid ${f.pid}): one AppendEntries with entries, until the next one, last ${windows.length}`,
  );
  medianTimeline(fm, windows, (l) =>
    l.startsWith('tx:') ? 'tx (the answer)' : l.startsWith('rx:AppendEntries:') ? 'rx AppendEntries' : l,
  );
}

console.log('\nflush (write of the batch, commit, fsync), per replica over the whole run:');
for (const t of traces) {
  const d: number[] = [];
  let started: number | undefined;
  for (const [l, at] of t.marks) {
    if (l === 'flush') started = at;
    else if (l === 'flushed' && started !== undefined) {
      d.push(at - started);
      started = undefined;
    }
  }
  if (d.length === 0) continue;
  const role = t === leader ? 'leader' : 'follower';
  console.log(
    `  pid ${t.pid} (${role}): ${d.length} flushes, p50 ${ms(quantile(d, 0.5))}, p90 ${ms(quantile(d, 0.9))}, p99 ${ms(quantile(d, 0.99))}`,
  );
}
fs.rmSync(dir, { recursive: true, force: true });
