// How long one scrypt hash takes on this machine: node scripts/scrypt-cost.mjs [N] [runs]
// (defaults: N = 2^17, the server default, r = 8, p = 1; 5 runs; prints median, min and max in ms).
import { randomBytes, scrypt } from 'node:crypto';
const N = Number(process.argv[2] ?? 131072);
const r = 8;
const p = 1;
const runs = Number(process.argv[3] ?? 5);
const one = () =>
  new Promise((res, rej) => {
    const t = process.hrtime.bigint();
    scrypt('correct horse', randomBytes(16), 32, { N, r, p, maxmem: 256 * N * r + (1 << 20) }, (e) =>
      e ? rej(e) : res(Number(process.hrtime.bigint() - t) / 1e6),
    );
  });
const ts = [];
for (let i = 0; i < runs; i++) ts.push(await one());
ts.sort((a, b) => a - b);
console.log(
  `N=${N} r=${r} p=${p}: median ${ts[Math.floor(ts.length / 2)].toFixed(1)} ms, min ${ts[0].toFixed(1)}, max ${ts.at(-1).toFixed(1)} over ${runs}`,
);
