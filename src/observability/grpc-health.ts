// grpc.health.v1.Health follows the replica: SERVING only while it can serve a client, that is while it
// is a member of the configuration and knows a leader (itself or another it forwards to). During an
// election, or on a replica cut off from the cluster, it reports NOT_SERVING, so a load balancer or a
// `grpc_health_probe` moves clients elsewhere.
import type { HealthImplementation } from 'grpc-health-check';

export interface HealthNode {
  readonly id: string;
  status(): { leaderId: string | null; config: { members: { id: string }[] } };
  onRoleChange(cb: () => void): () => void;
}

/** The services reported, '' being the whole server (buildGrpcServer registers these). */
export const healthServices = ['', 'quorumchat.v1.ChatService', 'quorumchat.v1.ClusterService'];

export function canServe(node: HealthNode): boolean {
  const s = node.status();
  return s.leaderId !== null && s.config.members.some((m) => m.id === node.id);
}

/**
 * Keeps `health` in step with the replica: on every role, term or leader change, and on a slow poll
 * for what changes without one (this replica being added to or removed from the configuration).
 * Returns a function that stops it.
 */
export function bindHealth(
  health: Pick<HealthImplementation, 'setStatus'>,
  node: HealthNode,
  opts: { services?: string[]; pollMs?: number } = {},
): () => void {
  const services = opts.services ?? healthServices;
  let current: boolean | undefined;
  const update = () => {
    const ok = canServe(node);
    if (ok === current) return;
    current = ok;
    for (const s of services) health.setStatus(s, ok ? 'SERVING' : 'NOT_SERVING');
  };
  update();
  const off = node.onRoleChange(update);
  const timer = setInterval(update, opts.pollMs ?? 1000);
  timer.unref();
  return () => {
    off();
    clearInterval(timer);
  };
}
