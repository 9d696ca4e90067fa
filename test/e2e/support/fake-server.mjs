// A stand-in for `quorum-chat server` for the harness's own unit tests: it takes the same flags,
// serves ClusterService.GetStatus on --port, and keeps a term in its data dir that grows by one per
// start (so a test can tell a restart reused the data dir). SIGTERM stops it with exit code 0.
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const args = process.argv.slice(2);
if (args[0] !== 'server') {
  console.error('fake-server: expected `server`');
  process.exit(2);
}
const flag = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const id = flag('--id');
const host = flag('--host') ?? '127.0.0.1';
const port = Number(flag('--port'));
const dataDir = flag('--data-dir');
fs.mkdirSync(dataDir, { recursive: true });
const termFile = join(dataDir, 'term');
const term = (fs.existsSync(termFile) ? Number(fs.readFileSync(termFile, 'utf8')) : 0) + 1;
fs.writeFileSync(termFile, String(term));

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const def = protoLoader.loadSync(join(root, 'proto', 'cluster.proto'), {
  keepCase: true,
  longs: Number,
  defaults: true,
});
const pkg = grpc.loadPackageDefinition(def).quorumchat.v1;
const server = new grpc.Server();
const leader = id === 'server1';
server.addService(pkg.ClusterService.service, {
  GetStatus: (_call, cb) =>
    cb(null, {
      node_id: id,
      address: `${host}:${port}`,
      role: leader ? 'leader' : 'follower',
      term,
      leader_id: 'server1',
      commit_index: 7,
      last_applied: 7,
      last_log_index: 7,
      members: [{ id, address: `${host}:${port}`, voter: true }],
      state_digest: 'd1g35t',
    }),
});
server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(`fake-server: ${err.message}`);
    process.exit(1);
  }
  console.log(`fake ${id} listening on ${host}:${port} with peers ${flag('--peers') ?? '-'}`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
