import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { grpcChannelCredentials, grpcServerCredentials, grpcTlsFromConfig } from './tls.js';

// Reading the mTLS files: clear errors for a missing, unreadable or non-PEM file and for PEM that
// OpenSSL cannot use. The handshakes themselves are tested on a real process (tests/e2e/grpc-mtls).
let dir: string;
let ca: string;
let key: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-tls-'));
  ca = path.join(dir, 'ca.pem');
  key = path.join(dir, 'ca.key');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', key, '-out', ca, '-days', '1', '-subj', '/CN=loupe-tls-test'],
    ],
    { stdio: 'ignore' },
  );
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const files = (overrides: Partial<Record<'grpcTlsCa' | 'grpcTlsCert' | 'grpcTlsKey', string>> = {}) => ({
  grpcTlsCa: ca,
  grpcTlsCert: ca,
  grpcTlsKey: key,
  ...overrides,
});

describe('grpcTlsFromConfig', () => {
  it('is undefined when mTLS is off, and the file contents when on', () => {
    expect(
      grpcTlsFromConfig({ grpcTlsCa: undefined, grpcTlsCert: undefined, grpcTlsKey: undefined }),
    ).toBeUndefined();
    const tls = grpcTlsFromConfig(files());
    expect(tls?.ca.toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(tls?.key.toString()).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // both ends build from them
    expect(() => grpcServerCredentials(tls)).not.toThrow();
    expect(() => grpcChannelCredentials(tls)).not.toThrow();
  });

  it('names the variable and the file it cannot read', () => {
    const missing = path.join(dir, 'nope.pem');
    expect(() => grpcTlsFromConfig(files({ grpcTlsKey: missing }))).toThrow(ConfigError);
    expect(() => grpcTlsFromConfig(files({ grpcTlsKey: missing }))).toThrow(
      `LOUPE_GRPC_TLS_KEY=${missing}: cannot read the file (ENOENT)`,
    );
    expect(() => grpcTlsFromConfig(files({ grpcTlsCert: dir }))).toThrow(
      /LOUPE_GRPC_TLS_CERT=.*cannot read the file \(EISDIR\)/,
    );
  });

  it('refuses a file that is not PEM', async () => {
    const text = path.join(dir, 'notes.txt');
    await fs.writeFile(text, 'not a certificate');
    expect(() => grpcTlsFromConfig(files({ grpcTlsCa: text }))).toThrow(
      /LOUPE_GRPC_TLS_CA=.*notes\.txt: not a PEM file/,
    );
  });

  it('turns PEM that OpenSSL cannot use into a config error', async () => {
    const broken = path.join(dir, 'broken.pem');
    await fs.writeFile(broken, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const tls = grpcTlsFromConfig(files({ grpcTlsKey: broken }));
    expect(() => grpcChannelCredentials(tls)).toThrow(/the PEM files cannot be used together/);
  });
});
