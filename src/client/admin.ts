// `quorum-chat member add|remove ...` and `quorum-chat transfer ...`: membership changes through
// ClusterService, authorised with the cluster secret; each prints the resulting ClusterStatus.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UserError } from '../user-error.js';
import { ClusterClient } from './cluster-client.js';
import { toClientError } from './errors.js';
import { parseAddressList } from './members.js';
import type { ClusterStatus } from './types.js';

/** Where `quorum-chat server` keeps the secret with default flags: the parent of ./data/<id>. */
export const defaultSecretFile = './data/cluster.secret';

const memberUsage = `usage:
  quorum-chat member add --id ID --address HOST:PORT --server HOST:PORT [--cluster-secret-file FILE]
  quorum-chat member remove --id ID --server HOST:PORT [--cluster-secret-file FILE]

  --server               any member of the cluster (the change is sent to its leader)
  --cluster-secret-file  the cluster secret (default: ${defaultSecretFile}, where a server started with
                         the default --data-dir keeps it)`;

const transferUsage = `usage:
  quorum-chat transfer [--to ID] --server HOST:PORT [--cluster-secret-file FILE]

  --to                   the voter to hand leadership to (default: the most up-to-date voter)
  --server               any member of the cluster
  --cluster-secret-file  the cluster secret (default: ${defaultSecretFile})`;

const common = {
  server: { type: 'string', short: 's' },
  'cluster-secret-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

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

export function readSecret(file: string | undefined): string {
  const path = file ?? defaultSecretFile;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UserError(
      `cannot read the cluster secret from ${path} (${why}); pass --cluster-secret-file FILE`,
    );
  }
  const secret = text.trim();
  if (!secret) throw new UserError(`the cluster secret file ${path} is empty`);
  return secret;
}

function parse<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(
  cmd: string,
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({ args: argv, options, strict: true }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (err) {
    throw new UserError(`${cmd}: ${(err as Error).message}`);
  }
}

async function withClient(
  cmd: string,
  values: Record<string, string | boolean | undefined>,
  change: (c: ClusterClient) => Promise<ClusterStatus>,
): Promise<number> {
  const servers = parseAddressList(String(values.server ?? ''));
  if (servers.length === 0) throw new UserError(`${cmd}: --server HOST:PORT is required`);
  const secret = readSecret(values['cluster-secret-file'] as string | undefined);
  const client = new ClusterClient(servers, { secret });
  try {
    console.log(formatClusterStatus(await change(client)));
    return 0;
  } catch (err) {
    const e = toClientError(err);
    throw new UserError(`${cmd}: ${e.codeName}: ${e.message}`);
  } finally {
    client.close();
  }
}

function showUsage(text: string): number {
  console.log(text);
  return 0;
}

export async function memberMain(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (!action || action === '--help' || action === '-h' || action === 'help') {
    console.log(memberUsage);
    return action ? 0 : 2;
  }
  if (action === 'add') {
    const v = parse('member add', rest, { ...common, id: { type: 'string' }, address: { type: 'string' } });
    if (v.help) return showUsage(memberUsage);
    if (!v.id || !v.address) throw new UserError('member add: --id ID and --address HOST:PORT are required');
    return withClient('member add', v, (c) => c.addMember(String(v.id), String(v.address)));
  }
  if (action === 'remove') {
    const v = parse('member remove', rest, { ...common, id: { type: 'string' } });
    if (v.help) return showUsage(memberUsage);
    if (!v.id) throw new UserError('member remove: --id ID is required');
    return withClient('member remove', v, (c) => c.removeMember(String(v.id)));
  }
  throw new UserError(`member: unknown action '${action}' (add or remove)`);
}

export async function transferMain(argv: string[]): Promise<number> {
  const v = parse('transfer', argv, { ...common, to: { type: 'string' } });
  if (v.help) {
    console.log(transferUsage);
    return 0;
  }
  return withClient('transfer', v, (c) => c.transferLeadership(typeof v.to === 'string' ? v.to : ''));
}
