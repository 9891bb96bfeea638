import type { UsageMeter } from '../llm/types.js';

/** Predicted activations (0–10) per token of one sequence, or why there are none. */
export type SimulationOutcome = { ok: true; values: number[] } | { ok: false; failure: string };

/**
 * - baseline: the built-in statistical simulator (no LLM);
 * - openai-all-at-once: OpenAI's simulator over /completions with echoed prompt logprobs (vLLM);
 * - openai-token-by-token: OpenAI's single-token simulator over chat completions with logprobs;
 * - line-logprobs: Loupe's `token<TAB>N` lines read through chat logprobs (not causal);
 * - json: the model writes JSON values, for servers without logprobs.
 */
export type SimulatorMethod =
  | 'baseline'
  | 'openai-all-at-once'
  | 'openai-token-by-token'
  | 'line-logprobs'
  | 'json';
export const SIMULATOR_METHODS: SimulatorMethod[] = [
  'baseline',
  'openai-all-at-once',
  'openai-token-by-token',
  'line-logprobs',
  'json',
];
/** Earlier names still accepted (stored jobs, old clients): "logprobs" was the line simulator's name. */
export const SIMULATOR_ALIASES: Record<string, SimulatorMethod> = { logprobs: 'line-logprobs' };

/** Predicts a unit's activations from an explanation alone. */
export interface Simulator {
  /** Model name for provenance ("baseline-statistical" for the built-in one). */
  readonly model: string;
  readonly method: SimulatorMethod;
  simulate(
    explanation: string,
    sequences: readonly (readonly string[])[],
    meter?: UsageMeter,
  ): Promise<SimulationOutcome[]>;
}
