import type { LoupeConfig } from '@loupe/common';
import type { LlmClientOptions } from './client.js';
import { pricesFromConfig } from './cost.js';

/** Client options from the configuration, with explicit overrides (CLI flags, request fields) on top. */
export function llmOptionsFromConfig(
  config: Pick<
    LoupeConfig,
    | 'llmBaseUrl'
    | 'llmApiKey'
    | 'llmModel'
    | 'llmConcurrency'
    | 'llmTimeoutMs'
    | 'llmPricePrompt'
    | 'llmPriceCompletion'
  >,
  overrides: Partial<LlmClientOptions> = {},
): LlmClientOptions | undefined {
  const baseUrl = overrides.baseUrl ?? config.llmBaseUrl;
  if (!baseUrl) return undefined;
  return {
    baseUrl,
    apiKey: overrides.apiKey ?? config.llmApiKey,
    model: overrides.model ?? config.llmModel,
    concurrency: overrides.concurrency ?? config.llmConcurrency,
    timeoutMs: overrides.timeoutMs ?? config.llmTimeoutMs,
    maxRetries: overrides.maxRetries,
    prices: overrides.prices ?? pricesFromConfig(config),
  };
}
