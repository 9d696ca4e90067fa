// `quorum-chat member add|remove ...` and `quorum-chat transfer ...`: membership changes through
// ClusterService, authorised with the cluster secret; each prints the resulting ClusterStatus.
import { readFileSync } from 'node:fs';
import { type CommandSpec, type FlagValues, HelpRequested, parseFlags, usageOf } from '../cli-flags.js';
import { SECRET_RULE, secretPath } from '../raft/cluster-secret.js';
import { TLS_CA_FLAG, clientChannelCredentials } from '../tls/credentials.js';
import { UserError } from '../user-error.js';
import { ClusterClient } from './cluster-client.js';
import { toClientError } from './errors.js';
import { parseAddressList } from './members.js';
import type { ClusterStatus } from './types.js';

/** Where `quorum-chat server` keeps the secret with default flags: the parent of ./data/<id>. */
export const defaultSecretFile = './data/cluster.secret';

const common = {
  server: { short: 's', value: 'HOST:PORT', help: 'any member of the cluster (changes go to its leader)' },
  'cluster-secret-file': { value: 'FILE', help: 'the cluster secret (default: see below)' },
  'data-dir': {
    value: 'DIR',
    help: 'the data dir of a replica on this machine: the secret is cluster.secret in its parent',
  },
  ...TLS_CA_FLAG,
} as const;

const secretNote = `The cluster secret is --cluster-secret-file, or else ${SECRET_RULE}.`;

const memberAdd: CommandSpec = {
  name: 'member add',
  synopsis: ['member add --id ID --address HOST:PORT --server HOST:PORT [--cluster-secret-file FILE]'],
  about: 'Adds a replica as a learner, waits until it has caught up, then promotes it to voter.',
  flags: {
    id: { value: 'ID', help: 'the new member’s id (required)' },
    address: { value: 'HOST:PORT', help: 'the new member’s gRPC address (required)' },
    ...common,
  },
  notes: secretNote,
};

const memberRemove: CommandSpec = {
  name: 'member remove',
  synopsis: ['member remove --id ID --server HOST:PORT [--cluster-secret-file FILE]'],
  about: 'Removes a member from the configuration; a removed leader steps down after the change commits.',
  flags: { id: { value: 'ID', help: 'the member to remove (required)' }, ...common },
  notes: secretNote,
};

const memberCommand: CommandSpec = {
  name: 'member',
  synopsis: [memberAdd.synopsis[0], memberRemove.synopsis[0]],
  about: "Membership changes. 'quorum-chat member add --help' and 'member remove --help' list the flags.",
  flags: {},
};

const transferCommand: CommandSpec = {
  name: 'transfer',
  synopsis: ['transfer [--to ID] --server HOST:PORT [--cluster-secret-file FILE]'],
  about: 'Hands leadership to another voter.',
  flags: {
    to: { value: 'ID', help: 'the voter to hand leadership to (default: the most up-to-date voter)' },
    ...common,
  },
  notes: secretNote,
};

/** One ClusterStatus as a few readable lines. */
export function formatClusterStatus(s: ClusterStatus): string {
  const leader = s.leader_id ? `${s.leader_id} (${s.leader_address})` : 'none known';
  const lines = [
    `${s.node_id} (${s.address}): ${s.role}, term ${s.term}, leader ${leader}`,
    `commit ${s.commit_index}, applied ${s.last_applied}, last log ${s.last_log_index}, snapshot ${s.snapshot_index}`,
    'members:',
    ...s.members.map((m) => `  ${m.id}  ${m.address}  ${m.voter ? 'voter' : 'learner'}`),
  ];
  return lines.join('\n');
}

/** The secret for a tool: --cluster-secret-file, or the server's rule (cluster-secret.ts). */
export function readSecret(file: string | undefined, dataDir?: string): string {
  const path = file ?? secretPath({ dataDir: dataDir ?? './data/ID' });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UserError(
      file
        ? `cannot read the cluster secret from ${path} (${why})`
        : `cannot read the cluster secret from ${path} (${why}); the secret is --cluster-secret-file, or else ${SECRET_RULE}: pass --data-dir DIR or --cluster-secret-file FILE`,
    );
  }
  const secret = text.trim();
  if (!secret) throw new UserError(`the cluster secret file ${path} is empty`);
  return secret;
}

/** What a change did, in one sentence, from the statuses before and after it. */
export function describeChange(
  action:
    | { kind: 'add'; id: string; address: string }
    | { kind: 'remove'; id: string }
    | { kind: 'transfer' },
  before: ClusterStatus | undefined,
  after: ClusterStatus,
): string {
  const voters = after.members.filter((m) => m.voter).length;
  const term = `term ${after.term}`;
  if (action.kind === 'transfer') {
    const to = after.leader_id || after.node_id;
    if (!before?.leader_id) return `leadership went to ${to} (${term}); no leader was known before`;
    if (before.leader_id === to) return `${to} already led; leadership did not move (${term})`;
    return `leadership moved from ${before.leader_id} to ${to} (${term})`;
  }
  if (action.kind === 'add') {
    const m = after.members.find((x) => x.id === action.id);
    const as = m ? (m.voter ? 'a voter' : 'a learner') : 'a member';
    return `${action.id} (${action.address}) was added as ${as}; the cluster has ${voters} voters (${term})`;
  }
  return `${action.id} was removed; the cluster has ${voters} voters (${term})`;
}

function parse(spec: CommandSpec, argv: string[]): FlagValues {
  return parseFlags(spec, argv);
}

async function withClient(
  cmd: string,
  values: FlagValues,
  action: Parameters<typeof describeChange>[0],
  change: (c: ClusterClient) => Promise<ClusterStatus>,
): Promise<number> {
  const servers = parseAddressList(String(values.server ?? ''));
  if (servers.length === 0) throw new UserError(`${cmd}: --server HOST:PORT is required`);
  const secret = readSecret(
    values['cluster-secret-file'] as string | undefined,
    values['data-dir'] as string | undefined,
  );
  const credentials = clientChannelCredentials(values['tls-ca-file'] as string | undefined);
  const client = new ClusterClient(servers, { secret, credentials });
  try {
    // The leader and term before the change, so the last line can say what moved (best effort).
    let before: ClusterStatus | undefined;
    try {
      before = await client.getStatus(servers[0]);
    } catch {
      before = undefined;
    }
    const after = await change(client);
    console.log(formatClusterStatus(after));
    console.log(describeChange(action, before, after));
    return 0;
  } catch (err) {
    const e = toClientError(err);
    throw new UserError(`${cmd}: ${e.codeName}: ${e.message}`);
  } finally {
    client.close();
  }
}

export async function memberMain(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action === '--help' || action === '-h' || action === 'help')
    throw new HelpRequested(usageOf(memberCommand));
  if (!action) {
    console.error(usageOf(memberCommand));
    return 2;
  }
  if (action === 'add') {
    const v = parse(memberAdd, rest);
    if (!v.id || !v.address) throw new UserError('member add: --id ID and --address HOST:PORT are required');
    const id = String(v.id);
    const address = String(v.address);
    return withClient('member add', v, { kind: 'add', id, address }, (c) => c.addMember(id, address));
  }
  if (action === 'remove') {
    const v = parse(memberRemove, rest);
    if (!v.id) throw new UserError('member remove: --id ID is required');
    const id = String(v.id);
    return withClient('member remove', v, { kind: 'remove', id }, (c) => c.removeMember(id));
  }
  throw new UserError(`member: unknown action '${action}' (add or remove); see 'quorum-chat member --help'`);
}

export async function transferMain(argv: string[]): Promise<number> {
  const v = parse(transferCommand, argv);
  return withClient('transfer', v, { kind: 'transfer' }, (c) =>
    c.transferLeadership(typeof v.to === 'string' ? v.to : ''),
  );
}
