/**
 * Learning rate at step `step` (0-based) of `steps`: linear warm-up, flat, then linear decay to zero
 * over the last `decayFraction` of the run. Warm-up keeps Adam's first, noisy moment estimates from
 * throwing the freshly initialised decoder around; the decay lets the final weights settle.
 */
export interface LrSchedule {
  base: number;
  warmupSteps: number;
  decayFraction: number;
}

export function learningRate(schedule: LrSchedule, step: number, steps: number): number {
  const { base, warmupSteps, decayFraction } = schedule;
  const warm = warmupSteps > 0 ? Math.min(1, (step + 1) / warmupSteps) : 1;
  const decaySteps = Math.floor(steps * decayFraction);
  const decayStart = steps - decaySteps;
  const decay = decaySteps > 0 && step >= decayStart ? (steps - step) / (decaySteps + 1) : 1;
  return base * warm * decay;
}

/** sparsify's default for TopK: 2e-4 at 16,384 latents, scaled by 1/√(width / 16,384). */
export function defaultTopKLearningRate(width: number): number {
  return 2e-4 / Math.sqrt(width / 16_384);
}
