import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';

// The variables with rules beyond their own value: LLM prices (finite, ≥ 0) and the gRPC mTLS
// files (all three or none).
describe('loadConfig', () => {
  it('prices default to 0 (unpriced) and accept fractional dollars per million tokens', () => {
    expect(loadConfig({})).toMatchObject({ llmPricePrompt: 0, llmPriceCompletion: 0 });
    expect(loadConfig({ LOUPE_LLM_PRICE_PROMPT: '0.15', LOUPE_LLM_PRICE_COMPLETION: '0.6' })).toMatchObject({
      llmPricePrompt: 0.15,
      llmPriceCompletion: 0.6,
    });
  });

  it.each(['-1', 'abc', 'Infinity', 'NaN', ' '])('refuses the price %j, naming the variable', (raw) => {
    expect(() => loadConfig({ LOUPE_LLM_PRICE_COMPLETION: raw })).toThrow(ConfigError);
    expect(() => loadConfig({ LOUPE_LLM_PRICE_COMPLETION: raw })).toThrow(
      /LOUPE_LLM_PRICE_COMPLETION=.*expected a finite number ≥ 0/,
    );
  });

  it('takes the three mTLS files together, as absolute paths', () => {
    const config = loadConfig({
      LOUPE_GRPC_TLS_CA: '/certs/ca.pem',
      LOUPE_GRPC_TLS_CERT: '/certs/svc.pem',
      LOUPE_GRPC_TLS_KEY: '/certs/svc.key',
    });
    expect(config).toMatchObject({
      grpcTlsCa: '/certs/ca.pem',
      grpcTlsCert: '/certs/svc.pem',
      grpcTlsKey: '/certs/svc.key',
    });
    expect(loadConfig({})).toMatchObject({
      grpcTlsCa: undefined,
      grpcTlsCert: undefined,
      grpcTlsKey: undefined,
    });
  });

  it('refuses part of the mTLS setup, naming what is missing', () => {
    expect(() => loadConfig({ LOUPE_GRPC_TLS_CA: '/certs/ca.pem' })).toThrow(
      /LOUPE_GRPC_TLS_CA is set but LOUPE_GRPC_TLS_CERT and LOUPE_GRPC_TLS_KEY are not/,
    );
    expect(() =>
      loadConfig({ LOUPE_GRPC_TLS_CA: '/certs/ca.pem', LOUPE_GRPC_TLS_CERT: '/certs/svc.pem' }),
    ).toThrow(/LOUPE_GRPC_TLS_CA and LOUPE_GRPC_TLS_CERT are set but LOUPE_GRPC_TLS_KEY is not/);
  });
});
