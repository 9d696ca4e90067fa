// Loads the .proto files once, with the options every server and client of the project uses.
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ at the project root, from src/ or from dist/src/. */
export const protoDir = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${join('dist', 'src')}`)
    ? join(here, '..', '..', 'proto')
    : join(here, '..', 'proto');
})();

export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: { definition: protoLoader.PackageDefinition; grpcObject: grpc.GrpcObject } | undefined;

/** All of the project's protos (chat, cluster, raft) as one package definition. */
export function loadProtos(): { definition: protoLoader.PackageDefinition; grpcObject: grpc.GrpcObject } {
  if (!cached) {
    const files = ['chat.proto', 'cluster.proto', 'raft.proto', 'forward.proto'].map((f) =>
      join(protoDir, f),
    );
    const { existsSync } = fs;
    const definition = protoLoader.loadSync(
      files.filter((f) => existsSync(f)),
      loaderOptions,
    );
    cached = { definition, grpcObject: grpc.loadPackageDefinition(definition) };
  }
  return cached;
}

/** The service constructors of package quorumchat.v1. */
export function services(): Record<string, grpc.ServiceClientConstructor> {
  const pkg = (loadProtos().grpcObject.quorumchat as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return pkg as unknown as Record<string, grpc.ServiceClientConstructor>;
}
