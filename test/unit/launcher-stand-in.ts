// A stand-in for `quorum-chat server` under a supervising LocalCluster (launcher-link.test.ts): it
// counts its starts in its data dir and, on server1's first start, asks the launcher to restart
// server2, an unknown replica, and itself, printing each answer. SIGTERM ends it with code 0.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { launcherOf } from '../../src/server/launcher-link.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const id = flag('--id') ?? '?';
const dataDir = flag('--data-dir') ?? '.';
fs.mkdirSync(dataDir, { recursive: true });
const startsFile = join(dataDir, 'starts');
const starts = (fs.existsSync(startsFile) ? Number(fs.readFileSync(startsFile, 'utf8')) : 0) + 1;
fs.writeFileSync(startsFile, String(starts));
console.log(`started ${id} #${starts}`);

process.on('SIGTERM', () => process.exit(0));
const alive = setInterval(() => {}, 1000);

const launcher = launcherOf();
if (!launcher) console.log('no launcher');
else if (id === 'server1' && starts === 1) {
  const ask = async (target: string) => {
    try {
      console.log(`asked ${target}: ${await launcher.restart(target)}`);
    } catch (err) {
      console.log(`asked ${target}: refused: ${(err as Error).message}`);
    }
  };
  await ask('server2');
  await ask('nobody');
  await ask('server1');
}
void alive;
