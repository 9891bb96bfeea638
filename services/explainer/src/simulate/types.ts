import type { UsageMeter } from '../llm/types.js';

/** Predicted activations (0–10) per token of one sequence, or why there are none. */
export type SimulationOutcome = { ok: true; values: number[] } | { ok: false; failure: string };

export type SimulatorMethod = 'baseline' | 'logprobs' | 'json';
export const SIMULATOR_METHODS: SimulatorMethod[] = ['baseline', 'logprobs', 'json'];

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
