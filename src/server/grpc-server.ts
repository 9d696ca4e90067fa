// Builds the one gRPC server of a replica: ChatService, ClusterService, grpc.health.v1.Health and server
// reflection (so grpcurl works without proto files). RaftService is added by the Raft wiring.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from '../logger.js';
import { loadProtos } from '../proto.js';
import { RAFT_SERVICE_PREFIX } from '../raft/raft-service.js';
import { type GuardedService, secretGate } from '../raft/secret-guard.js';
import { serverCredentials } from '../tls/credentials.js';
import { peerCertificateGate } from '../tls/peer-certificate-gate.js';
import type { ReplicaTls } from '../tls/tls-files.js';
import { UserError } from '../user-error.js';
import { MAX_REQUEST_BYTES, chatServiceDefinition } from './chat-handlers.js';
import { clusterMethodNeedsSecret } from './cluster-handlers.js';
import { FORWARD_SERVICE_PREFIX } from './forward-stream.js';
import { type Topology, topologyMetadata } from './metadata.js';

export interface GrpcServerParts {
  chat: grpc.UntypedServiceImplementation;
  cluster: GuardedService;
  /** Further services (RaftService, ForwardService) to register on the same port. */
  extra?: (server: grpc.Server) => void;
  /** The cluster secret: every RaftService and ForwardService call and ClusterService's guarded calls need it. */
  secret: string;
  /** For the topology hints on refused ClusterService calls. */
  topology?: Topology;
  logger?: Logger;
  /** With a CA: RaftService calls need a peer certificate chaining to it (mutual TLS). */
  tls?: ReplicaTls;
}

export interface BuiltServer {
  server: grpc.Server;
  health: HealthImplementation;
}

/** Services only replicas call: RaftService, and ForwardService (a follower's forwarded calls). */
function peersOnly(path: string): boolean {
  return path.startsWith(RAFT_SERVICE_PREFIX) || path.startsWith(FORWARD_SERVICE_PREFIX);
}

export function buildGrpcServer(parts: GrpcServerParts): BuiltServer {
  const { topology, logger } = parts;
  // Calls that need the cluster secret and come without it are refused before their body is read:
  // the 16 MiB below is for authenticated peers' batches only.
  const gate = secretGate({
    secret: parts.secret,
    needsSecret: (path) => peersOnly(path) || clusterMethodNeedsSecret(path),
    refusalMetadata: (path) =>
      topology && clusterMethodNeedsSecret(path) ? topologyMetadata(topology) : undefined,
    onRefused: (path) => logger?.warn({ path }, 'a call without the cluster secret was refused'),
    // Calls anyone may make (ChatService, GetStatus, health) are read up to twice the 64 KiB limit:
    // up to that the handlers answer RESOURCE_EXHAUSTED in their own words, with the topology hints;
    // beyond it grpc-js refuses while reading, so an anonymous caller never makes us hold more.
    maxOpenMessageBytes: 2 * MAX_REQUEST_BYTES,
  });
  const server = new grpc.Server({
    // ChatService and ClusterService's GetStatus decode at most 64 KiB (chat-handlers.ts,
    // secret-guard.ts); this is the ceiling for peers' batches.
    'grpc.max_receive_message_length': 16 << 20,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
    interceptors: [
      parts.tls?.ca
        ? peerCertificateGate({
            peersOnly,
            onRefused: (path, peer, reason) =>
              logger?.warn({ path, peer, reason }, `a peer's call was refused: ${reason}`),
            inner: gate,
          })
        : gate,
    ],
  });
  server.addService(chatServiceDefinition(), parts.chat);
  server.addService(parts.cluster.definition, parts.cluster.implementation);
  parts.extra?.(server);
  const health = new HealthImplementation({
    '': 'SERVING',
    'quorumchat.v1.ChatService': 'SERVING',
    'quorumchat.v1.ClusterService': 'SERVING',
  });
  health.addToServer(server);
  new ReflectionService(loadProtos().definition).addToServer(server);
  return { server, health };
}

/**
 * Binds host:port, over TLS when `tls` is given; a port in use (or any bind failure) is a one-line
 * UserError. Returns the bound port.
 */
export function listen(server: grpc.Server, host: string, port: number, tls?: ReplicaTls): Promise<number> {
  const target = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(target, serverCredentials(tls), (err, bound) => {
      if (err) {
        const inUse = /EADDRINUSE|address already in use/i.test(err.message);
        reject(
          new UserError(
            inUse ? `port ${port} on ${host} is in use` : `cannot listen on ${target}: ${err.message}`,
          ),
        );
      } else {
        resolve(bound);
      }
    });
  });
}

/** Stops accepting calls, waits up to `graceMs` for running ones, then cuts the rest. */
export function shutdown(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
