import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { type LoupeConfig, loadConfig, VARIABLES } from '../config.js';
import { ConfigError } from '../errors.js';

/**
 * Mutual TLS between Loupe's gRPC services: one CA signs every service's certificate; servers demand
 * a client certificate from that CA, and clients check the server's against it. The PEM files are
 * read once per process (rotating them means restarting), and both ends are built here so a server
 * and its clients can never disagree on the setup.
 */
export interface GrpcTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

type TlsConfig = Pick<LoupeConfig, 'grpcTlsCa' | 'grpcTlsCert' | 'grpcTlsKey'>;

const read = new Map<string, GrpcTls>();

/** The PEM files named by the config, or undefined when mTLS is off (none of the three set). */
export function grpcTlsFromConfig(config: TlsConfig = loadConfig()): GrpcTls | undefined {
  const { grpcTlsCa: ca, grpcTlsCert: cert, grpcTlsKey: key } = config;
  if (ca === undefined || cert === undefined || key === undefined) return undefined;
  const cacheKey = `${ca}\0${cert}\0${key}`;
  let tls = read.get(cacheKey);
  if (!tls) {
    tls = {
      ca: readPem(VARIABLES.grpcTlsCa.name, ca),
      cert: readPem(VARIABLES.grpcTlsCert.name, cert),
      key: readPem(VARIABLES.grpcTlsKey.name, key),
    };
    read.set(cacheKey, tls);
  }
  return tls;
}

function readPem(variable: string, file: string): Buffer {
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`${variable}=${file}: cannot read the file (${code}); give a readable PEM file`);
  }
  if (!pem.includes('-----BEGIN '))
    throw new ConfigError(`${variable}=${file}: not a PEM file (no "-----BEGIN" line)`);
  return pem;
}

/** What a gRPC server listens with: mTLS requiring a client certificate, or plaintext. */
export function grpcServerCredentials(tls: GrpcTls | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return pemErrors(() =>
    grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true),
  );
}

/** What a gRPC client dials with: its certificate and the CA it trusts, or plaintext. */
export function grpcChannelCredentials(tls: GrpcTls | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return pemErrors(() => grpc.credentials.createSsl(tls.ca, tls.key, tls.cert));
}

/** OpenSSL's complaints about a PEM it cannot use, as a config error naming the variables. */
function pemErrors<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    throw new ConfigError(
      `LOUPE_GRPC_TLS_CA, LOUPE_GRPC_TLS_CERT, LOUPE_GRPC_TLS_KEY: the PEM files cannot be used together (${(error as Error).message})`,
    );
  }
}
