import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, PROTO_ROOT } from './protos.js';
import { grpcChannelCredentials, grpcTlsFromConfig } from './tls.js';

type HealthClient = grpc.Client & {
  Check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
  ): void;
};

const clients = new Map<string, HealthClient>();

function healthClient(address: string): HealthClient {
  let client = clients.get(address);
  if (!client) {
    const definition = protoLoader.loadSync(
      path.join(PROTO_ROOT, 'grpc/health/v1/health.proto'),
      PROTO_LOADER_OPTIONS,
    );
    const proto = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => HealthClient } } };
    };
    // with mTLS configured, health is asked over it like every other call (the server demands it)
    client = new proto.grpc.health.v1.Health(address, grpcChannelCredentials(grpcTlsFromConfig()));
    clients.set(address, client);
  }
  return client;
}

/**
 * Asks the standard gRPC health service at `address` whether `service` is SERVING; rejects with the
 * reason (not serving, unreachable) otherwise. Used by the gateway's /readyz for the services it needs.
 */
export function expectServing(address: string, service = '', timeoutMs = 3_000): Promise<void> {
  return new Promise((resolve, reject) => {
    healthClient(address).Check({ service }, { deadline: Date.now() + timeoutMs }, (error, response) => {
      if (error) reject(new Error(`${address} unreachable (${grpc.status[error.code] ?? error.code})`));
      else if (response?.status !== 'SERVING') reject(new Error(`${address} is ${response?.status}`));
      else resolve();
    });
  });
}

/** Closes the health channels (a process that stops its gateway). */
export function closeHealthClients(): void {
  for (const client of clients.values()) client.close();
  clients.clear();
}
