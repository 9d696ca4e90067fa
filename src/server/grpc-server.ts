// Builds the one gRPC server of a replica: ChatService, ClusterService, grpc.health.v1.Health and server
// reflection (so grpcurl works without proto files). RaftService is added by the Raft wiring.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { loadProtos, services } from '../proto.js';
import { UserError } from '../user-error.js';
import { chatServiceDefinition } from './chat-handlers.js';

export interface GrpcServerParts {
  chat: grpc.UntypedServiceImplementation;
  cluster: grpc.UntypedServiceImplementation;
  /** Further services (RaftService) to register on the same port. */
  extra?: (server: grpc.Server) => void;
}

export interface BuiltServer {
  server: grpc.Server;
  health: HealthImplementation;
}

export function buildGrpcServer(parts: GrpcServerParts): BuiltServer {
  const server = new grpc.Server({
    // ChatService enforces its own 64 KiB limit (chat-handlers.ts); this is the ceiling for peers' batches.
    'grpc.max_receive_message_length': 16 << 20,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  server.addService(chatServiceDefinition(), parts.chat);
  server.addService(services().ClusterService.service, parts.cluster);
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

/** Binds host:port; a port in use (or any bind failure) is a one-line UserError. Returns the bound port. */
export function listen(server: grpc.Server, host: string, port: number): Promise<number> {
  const target = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, bound) => {
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
