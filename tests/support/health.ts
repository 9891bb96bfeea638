import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO_ROOT } from './process.js';

type HealthClient = grpc.Client & {
  Check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
  ): void;
};

/** A grpc.health.v1 client for `address`, built here from the .proto; one connection for many checks. */
export function healthClient(
  address: string,
  credentials = grpc.credentials.createInsecure(),
): { check(service?: string): Promise<{ status?: string; code?: grpc.status }>; close(): void } {
  const definition = protoLoader.loadSync(path.join(REPO_ROOT, 'proto/grpc/health/v1/health.proto'), {
    enums: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => HealthClient } } };
  };
  const client = new loaded.grpc.health.v1.Health(address, credentials);
  return {
    check: (service = '') =>
      new Promise((resolve) => {
        client.Check({ service }, { deadline: Date.now() + 5_000 }, (error, response) => {
          resolve(error ? { code: error.code } : { status: response?.status });
        });
      }),
    close: () => client.close(),
  };
}

/** grpc.health.v1 Check against `address` on a fresh connection: the status, or the error code. */
export async function healthCheck(
  address: string,
  service = '',
  credentials = grpc.credentials.createInsecure(),
): Promise<{ status?: string; code?: grpc.status }> {
  const client = healthClient(address, credentials);
  try {
    return await client.check(service);
  } finally {
    client.close();
  }
}

/** Polls `probe` every `everyMs` until `done` holds for its value; throws with the last value after `timeoutMs`. */
export async function until<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  { timeoutMs = 120_000, everyMs = 100 } = {},
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await probe();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
}
