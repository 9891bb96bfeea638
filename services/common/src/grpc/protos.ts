import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The repository's proto/ folder, found from this module whether it runs from src/ or dist/. */
export const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../proto');

/** Loader options shared by every server and client, matching how the types were generated. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export function protoFile(service: 'capture' | 'sae' | 'explainer'): string {
  return path.join(PROTO_ROOT, 'loupe/v1', `${service}.proto`);
}

export function loadProto<T>(service: 'capture' | 'sae' | 'explainer'): T {
  const definition = protoLoader.loadSync(protoFile(service), PROTO_LOADER_OPTIONS);
  return grpc.loadPackageDefinition(definition) as unknown as T;
}
