import {
  executionProvider,
  jobsFinished,
  llmCalls,
  llmCost,
  llmRetries,
  llmTokens,
  tokensProcessed,
} from './registry.js';

// One-line hooks for the places that do the work, so those modules need no prom-client knowledge.

/** An ONNX Runtime session was opened on `provider` (cpu, cuda) by `service`. */
export function recordExecutionProvider(service: string, provider: string): void {
  executionProvider.inc({ service, provider });
}

/** A forward pass of `tokens` tokens through `model`. */
export function recordTokens(service: string, model: string, tokens: number): void {
  tokensProcessed.inc({ service, model }, tokens);
}

/** A durable job in `table` ended (done, failed, cancelled, …). */
export function recordJobFinished(table: string, outcome: string): void {
  jobsFinished.inc({ table, outcome });
}

/**
 * One LLM chat call that returned, with its usage, how many attempts it took and what it cost in US
 * dollars at the configured prices (0 when unpriced: the series still appears, at 0).
 */
export function recordLlmCall(call: {
  model: string;
  promptTokens: number;
  completionTokens: number;
  attempts: number;
  usageSource: string;
  costUsd: number;
}): void {
  const { model, usageSource: source } = call;
  llmCalls.inc({ model });
  llmTokens.inc({ model, kind: 'prompt', source }, call.promptTokens);
  llmTokens.inc({ model, kind: 'completion', source }, call.completionTokens);
  llmCost.inc({ model }, call.costUsd);
  if (call.attempts > 1) llmRetries.inc({ model }, call.attempts - 1);
}
