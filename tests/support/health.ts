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

/** grpc.health.v1 Check against `address`, with a client built here from the .proto: the status, or the error code. */
export function healthCheck(
  address: string,
  service = '',
  credentials = grpc.credentials.createInsecure(),
): Promise<{ status?: string; code?: grpc.status }> {
  const definition = protoLoader.loadSync(path.join(REPO_ROOT, 'proto/grpc/health/v1/health.proto'), {
    enums: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => HealthClient } } };
  };
  const client = new loaded.grpc.health.v1.Health(address, credentials);
  return new Promise((resolve) => {
    client.Check({ service }, { deadline: Date.now() + 5_000 }, (error, response) => {
      client.close();
      resolve(error ? { code: error.code } : { status: response?.status });
    });
  });
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
