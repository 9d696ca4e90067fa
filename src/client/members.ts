// Which replica to talk to: the member list (refreshed from every response's x-members), the leader
// hint (x-leader), and one grpc-js channel per address, shared by unary calls and streams.
import * as grpc from '@grpc/grpc-js';
import { services } from '../proto.js';

/** Channel options for every client channel. */
export const channelOptions: grpc.ChannelOptions = {
  // Notice a dead replica quickly after it comes back, instead of grpc-js's default 1 s..120 s backoff.
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2000,
  // A SIGSTOPped replica keeps its sockets open; keepalive pings are how a long Subscribe stream learns it
  // is gone. (The grpc-js server does not police ping rates.)
  'grpc.keepalive_time_ms': 5000,
  'grpc.keepalive_timeout_ms': 3000,
  'grpc.keepalive_permit_without_calls': 1,
};

/** Parses `host:port,host:port` (spaces and empty items ignored). */
export function parseAddressList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export interface MembersOptions {
  /** How long an address that just failed is skipped as leader (ms). */
  leaderCooldownMs?: number;
  now?: () => number;
  /** How replicas are dialled: plaintext by default, TLS with a CA (tls/credentials.ts). */
  credentials?: grpc.ChannelCredentials;
}

export class Members {
  private list: string[];
  private leaderAddress: string | undefined;
  private cursor = 0;
  private readonly failedAt = new Map<string, number>();
  private readonly chatStubs = new Map<string, grpc.Client>();
  private readonly clusterStubs = new Map<string, grpc.Client>();
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly credentials: grpc.ChannelCredentials;

  constructor(addresses: string[], opts: MembersOptions = {}) {
    this.list = dedupe(addresses);
    if (this.list.length === 0) throw new Error('at least one server address is needed');
    this.cooldownMs = opts.leaderCooldownMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.credentials = opts.credentials ?? grpc.credentials.createInsecure();
  }

  /** The current member list (voting members once a server has told us). */
  get addresses(): readonly string[] {
    return this.list;
  }

  /** The leader's address, when a server has told us and it has not failed us since. */
  get leader(): string | undefined {
    return this.leaderAddress;
  }

  /** The address for the next attempt: the leader when known (saves the follower's forwarding hop), else
   * the member at the round-robin cursor. */
  pick(): string {
    const l = this.leaderAddress;
    if (l !== undefined && !this.recentlyFailed(l)) return l;
    return this.list[this.cursor % this.list.length];
  }

  /** An attempt on `address` failed in transport (or with "no leader"): move on to the next member. */
  markFailed(address: string): void {
    this.failedAt.set(address, this.now());
    if (this.leaderAddress === address) this.leaderAddress = undefined;
    const i = this.list.indexOf(address);
    this.cursor = i >= 0 ? i + 1 : this.cursor + 1;
  }

  /** Reads the topology hints of a response (headers or trailers, success or error). */
  absorb(md: grpc.Metadata | undefined | null): void {
    if (!md) return;
    const membersValue = md.get('x-members')[0];
    const leaderValue = md.get('x-leader')[0];
    if (typeof membersValue === 'string') {
      const fresh = parseAddressList(membersValue);
      if (fresh.length > 0) this.setList(fresh);
    }
    if (typeof leaderValue === 'string' && leaderValue.trim() !== '') {
      const l = leaderValue.trim();
      // A follower's hint can lag behind an election: don't jump straight back to a leader that just failed.
      if (!this.recentlyFailed(l)) this.leaderAddress = l;
      if (!this.list.includes(l)) this.list = [...this.list, l];
    } else if (typeof membersValue === 'string') {
      // A complete set of hints without x-leader means that server knows no leader right now.
      this.leaderAddress = undefined;
    }
  }

  /** Replaces the member list (e.g. from a ClusterStatus); an empty list is ignored. */
  absorbList(addresses: string[]): void {
    if (addresses.length > 0) this.setList(addresses);
  }

  /** The ChatService stub for an address (created once, reused). */
  chatStub(address: string): grpc.Client {
    return stub(this.chatStubs, 'ChatService', address, this.credentials);
  }

  /** The ClusterService stub for an address (created once, reused). */
  clusterStub(address: string): grpc.Client {
    return stub(this.clusterStubs, 'ClusterService', address, this.credentials);
  }

  /** Closes every channel. */
  close(): void {
    for (const c of [...this.chatStubs.values(), ...this.clusterStubs.values()]) c.close();
    this.chatStubs.clear();
    this.clusterStubs.clear();
  }

  private setList(fresh: string[]): void {
    const current = this.list[this.cursor % this.list.length];
    this.list = dedupe(fresh);
    // Keep pointing at the same member if it is still listed, so a refresh doesn't cause a hop.
    const i = this.list.indexOf(current);
    this.cursor = i >= 0 ? i : 0;
  }

  private recentlyFailed(address: string): boolean {
    const t = this.failedAt.get(address);
    return t !== undefined && this.now() - t < this.cooldownMs;
  }
}

function dedupe(list: string[]): string[] {
  return [...new Set(list.map((s) => s.trim()).filter((s) => s.length > 0))];
}

function stub(
  cache: Map<string, grpc.Client>,
  service: string,
  address: string,
  credentials: grpc.ChannelCredentials,
): grpc.Client {
  let c = cache.get(address);
  if (!c) {
    const Ctor = services()[service];
    c = new Ctor(address, credentials, channelOptions);
    cache.set(address, c);
  }
  return c;
}
