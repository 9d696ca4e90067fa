// `quorum-chat status --server HOST:PORT`: asks that replica for its ClusterStatus, then every member it
// lists, and prints one row per member, marking the ones that do not answer.
import { type CommandSpec, parseFlags } from '../cli-flags.js';
import { TLS_CA_FLAG, clientChannelCredentials } from '../tls/credentials.js';
import { UserError } from '../user-error.js';
import { ClusterClient } from './cluster-client.js';
import { toClientError } from './errors.js';
import { parseAddressList } from './members.js';
import type { ClusterStatus } from './types.js';

export interface StatusRow {
  id: string;
  address: string;
  voter: boolean;
  status?: ClusterStatus;
  /** Why the member did not answer. */
  error?: string;
}

/** Asks `server`, then every member it lists (and `server` itself if it is not listed). */
export async function collectStatus(
  server: string,
  client = new ClusterClient([server]),
): Promise<StatusRow[]> {
  const first = await client.getStatus(server);
  const rows: StatusRow[] = first.members.map((m) => ({ id: m.id, address: m.address, voter: m.voter }));
  if (!rows.some((r) => r.address === server || r.id === first.node_id)) {
    rows.push({ id: first.node_id, address: server, voter: false });
  }
  await Promise.all(
    rows.map(async (r) => {
      if (r.id === first.node_id || r.address === server) {
        r.status = first;
        return;
      }
      try {
        r.status = await client.getStatus(r.address);
      } catch (err) {
        const e = toClientError(err);
        r.error = `${e.codeName}: ${e.message}`;
      }
    }),
  );
  return rows;
}

/** The table, plus a summary line. Lag is the leader's commit index minus the member's applied index. */
export function formatStatus(rows: StatusRow[]): string {
  const answered = rows.filter((r) => r.status).map((r) => r.status!);
  const leader = answered.find((s) => s.role === 'leader');
  const leaderCommit = leader?.commit_index ?? Math.max(0, ...answered.map((s) => s.commit_index));
  // FSYNC-P99: p99 of the member's last 1000 log fsyncs; LOOP-P99: its event-loop delay over the last
  // 10 s (both ms). A slow disk delays every commit; a blocked loop delays the election timers.
  const header = [
    'ID',
    'ADDRESS',
    'ROLE',
    'TERM',
    'COMMIT',
    'APPLIED',
    'LAG',
    'FSYNC-P99',
    'LOOP-P99',
    'DIGEST',
    '',
  ];
  const ms = (v: number | undefined) => (v === undefined ? '-' : `${v}ms`);
  const table = rows.map((r) => {
    const s = r.status;
    if (!s)
      return [
        r.id,
        r.address,
        r.voter ? '-' : 'learner',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        `UNREACHABLE (${r.error})`,
      ];
    return [
      s.node_id || r.id,
      r.address,
      s.role,
      String(s.term),
      String(s.commit_index),
      String(s.last_applied),
      String(Math.max(0, leaderCommit - s.last_applied)),
      ms(s.fsync_p99_ms),
      ms(s.event_loop_lag_p99_ms),
      s.state_digest.slice(0, 12),
      r.voter ? '' : 'non-voting',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...table.map(line)];
  const summary = [
    leader
      ? `leader ${leader.node_id} (${leader.address}), term ${leader.term}`
      : 'no leader among the members that answered',
    `${answered.length} of ${rows.length} members answered`,
  ];
  // Replicas that applied the same prefix of the log must hold the same state: say so when they don't.
  const byApplied = new Map<number, Set<string>>();
  for (const s of answered) {
    const set = byApplied.get(s.last_applied) ?? new Set<string>();
    set.add(s.state_digest);
    byApplied.set(s.last_applied, set);
  }
  const diverged = [...byApplied].filter(([, digests]) => digests.size > 1).map(([i]) => i);
  if (diverged.length > 0) summary.push(`DIGESTS DIFFER at applied index ${diverged.join(', ')}`);
  const slow = answered.filter((s) => (s.slow_fsyncs ?? 0) > 0);
  if (slow.length > 0)
    summary.push(`slow fsyncs: ${slow.map((s) => `${s.node_id} ${s.slow_fsyncs}`).join(', ')}`);
  out.push(summary.join('; '));
  return out.join('\n');
}

export const statusCommand: CommandSpec = {
  name: 'status',
  synopsis: ['status --server HOST:PORT [--tls-ca-file FILE]'],
  about:
    'Asks that replica for its ClusterStatus, then every member it lists, and prints one row per member: ' +
    'role, term, commit and applied index, lag, p99 fsync and event-loop lag (last minute), state digest.',
  flags: { server: { short: 's', value: 'HOST:PORT', help: 'any replica (required)' }, ...TLS_CA_FLAG },
};

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags(statusCommand, argv) as { server?: string; 'tls-ca-file'?: string };
  const [server] = parseAddressList(values.server ?? '');
  if (!server) throw new UserError('status: --server HOST:PORT is required');
  const client = new ClusterClient([server], {
    credentials: clientChannelCredentials(values['tls-ca-file']),
  });
  try {
    const rows = await collectStatus(server, client);
    console.log(formatStatus(rows));
    return rows.every((r) => r.status) ? 0 : 1;
  } catch (err) {
    const e = toClientError(err);
    throw new UserError(`status: ${server} did not answer: ${e.codeName}: ${e.message}`);
  } finally {
    client.close();
  }
}
