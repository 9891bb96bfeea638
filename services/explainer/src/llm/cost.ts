import type { LoupeConfig } from '@loupe/common';
import { recordLlmCall } from '@loupe/common/metrics';
import type { TokenUsage, UsageMeter } from './types.js';

/** US dollars per million tokens, as LLM providers list them; 0 = unpriced (a local server). */
export interface LlmPrices {
  promptUsdPerMillion: number;
  completionUsdPerMillion: number;
}

export const UNPRICED: LlmPrices = { promptUsdPerMillion: 0, completionUsdPerMillion: 0 };

export function pricesFromConfig(
  config: Pick<LoupeConfig, 'llmPricePrompt' | 'llmPriceCompletion'>,
): LlmPrices {
  return { promptUsdPerMillion: config.llmPricePrompt, completionUsdPerMillion: config.llmPriceCompletion };
}

/**
 * What `usage` costs at `prices`. Linear in the tokens, so the cost of a job is this over its token
 * totals, which is the sum over its calls.
 */
export function llmCostUsd(usage: TokenUsage, prices: LlmPrices): number {
  return (
    (usage.promptTokens * prices.promptUsdPerMillion +
      usage.completionTokens * prices.completionUsdPerMillion) /
    1_000_000
  );
}

/** Counts one answered LLM call: into the caller's meter and into the process metrics, priced. */
export function countLlmCall(
  result: { usage: TokenUsage; attempts: number; model: string; usageSource: 'server' | 'estimated' },
  prices: LlmPrices,
  meter?: UsageMeter,
): void {
  meter?.record(result);
  recordLlmCall({
    ...result.usage,
    model: result.model,
    attempts: result.attempts,
    usageSource: result.usageSource,
    costUsd: llmCostUsd(result.usage, prices),
  });
}
