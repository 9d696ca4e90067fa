// The `quorum-chat` command line (API.md §1). Each subcommand lives in its own module, loaded on demand
// so that `client` does not pay for the server's start-up and vice versa. Each parses its flags with
// cli-flags.ts, which answers --help and -h by throwing HelpRequested: printed here, exit 0.
import { HelpRequested } from './cli-flags.js';
import { silenceIpServerNameWarning } from './tls/quiet-warnings.js';

silenceIpServerNameWarning();

const usage = `usage:
  quorum-chat server --id ID --port PORT [--host 127.0.0.1] [--data-dir DIR] [--peers HOST:PORT,...]
                     [--http-port PORT] [--heartbeat-ms 50] [--election-timeout-ms 150-300]
                     [--cluster-secret-file FILE] [--log-level info] [--session-ttl 30d]
                     [--tls-cert-file FILE --tls-key-file FILE [--tls-ca-file FILE]]
  quorum-chat client --server HOST:PORT[,HOST:PORT...] [--tls-ca-file FILE]
  quorum-chat status --server HOST:PORT [--tls-ca-file FILE]
  quorum-chat cluster [--size 5] [--base-port 5555] [--data-dir DIR] [--tls]
  quorum-chat member add --id ID --address HOST:PORT --server HOST:PORT [--cluster-secret-file FILE]
  quorum-chat member remove --id ID --server HOST:PORT [--cluster-secret-file FILE]
  quorum-chat transfer [--to ID] --server HOST:PORT [--cluster-secret-file FILE]
  quorum-chat bench [--clients 64] [--seconds 10] [--failover-trials 5] [--out FILE] [--tls]
  quorum-chat certs --out DIR --hosts NAME[,NAME...]
  quorum-chat backup --server HOST:PORT --out FILE [--cluster-secret-file FILE] [--tls-ca-file FILE]
  quorum-chat restore --from FILE --id ID --port PORT [--data-dir DIR] [--no-start]

TLS: servers take --tls-cert-file, --tls-key-file and --tls-ca-file; clients and tools --tls-ca-file.

'quorum-chat COMMAND --help' describes every flag of a command.`;

type Main = (argv: string[]) => Promise<number | undefined>;

const commands: Record<string, () => Promise<Main>> = {
  server: async () => (await import('./server/main.js')).main,
  client: async () => (await import('./client/terminal.js')).main,
  status: async () => (await import('./client/status.js')).main,
  cluster: async () => (await import('./server/local-cluster.js')).main,
  member: async () => (await import('./client/admin.js')).memberMain,
  transfer: async () => (await import('./client/admin.js')).transferMain,
  bench: async () => (await import('./bench/main.js')).main,
  certs: async () => (await import('./tls/certs.js')).main,
  backup: async () => (await import('./client/backup.js')).main,
  restore: async () => (await import('./server/restore.js')).main,
};

async function run(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage);
    process.exit(name ? 0 : 2);
  }
  const load = commands[name];
  if (!load) {
    console.error(`quorum-chat: unknown command '${name}'; see 'quorum-chat --help'`);
    process.exit(2);
  }
  const code = await (await load())(rest);
  if (code !== undefined) process.exitCode = code;
}

run().catch((err: unknown) => {
  if (err instanceof HelpRequested) {
    console.log(err.usage);
    process.exit(0);
  }
  // A user error is reported in one line; anything else is a bug and keeps its stack.
  if (err instanceof Error && (err as { userError?: boolean }).userError) {
    console.error(`quorum-chat: ${err.message}`);
  } else {
    console.error(err);
  }
  process.exit(1);
});
