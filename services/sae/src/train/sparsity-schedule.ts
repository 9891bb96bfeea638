/**
 * Linear warm-up of a sparsity coefficient from 0 to `final` over `warmupSteps` steps: the coefficient for
 * the step after `completedSteps` steps. Starting at 0 lets the dictionary form before the penalty starts
 * killing latents (Anthropic's April 2024 update warms L1 up over the first 5% of training).
 */
export function warmedUpCoefficient(final: number, warmupSteps: number, completedSteps: number): number {
  if (warmupSteps <= 0) return final;
  return final * Math.min(1, completedSteps / warmupSteps);
}

/** Steps a run of `steps` steps warms its sparsity coefficient up over: the first 5%. */
export function sparsityWarmupSteps(steps: number): number {
  return Math.floor(steps / 20);
}
