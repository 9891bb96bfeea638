import type { GraphBuilder } from '@loupe/common';

/**
 * Scalar graph input: 1 while the step selects latents per vector (TopK) instead of by the
 * architecture's own rule, 0 after. The trainer feeds it from the architecture's `stepInputs`.
 */
export const WARM_START_INPUT = 'topk_warm_start';

/** Fraction of a run's steps that start with per-vector TopK selection, for BatchTopK and JumpReLU. */
export const WARM_START_FRACTION = 0.5;

/** Steps a run of `steps` steps selects per vector before its own rule takes over. */
export function warmStartSteps(steps: number): number {
  return Math.floor(steps * WARM_START_FRACTION);
}

/** The warm-start input's value for the step after `completedSteps` steps. */
export function warmStartFlag(warmSteps: number, completedSteps: number): number {
  return completedSteps < warmSteps ? 1 : 0;
}

/**
 * Why the warm start exists (measured on the synthetic benchmark, 512 directions in 64 dimensions):
 * selecting by a batch-wide cut (BatchTopK) or by thresholds (JumpReLU) from the first step lets the
 * vectors with many active directions, whose norms are largest, take nearly every selection while the
 * latents are still random. The latents then learn sums of directions that fire on 5–20% of vectors,
 * a stable state: 24% of directions recovered after 1,200 steps with warm-up and AuxK at 1. Per-vector
 * TopK gives every vector its share of the gradient, finds the directions (TopK: 96% in 300 steps), and
 * the architecture's own rule then keeps them (measured at constant lr 5e-3, half the steps warm: BatchTopK 99%, JumpReLU 96%; through trainSae see src/run/recovery.test.ts).
 *
 * Returns the [B, m] activations: `own` while the flag is 0, else the k largest ReLU'd pre-activations
 * per vector.
 */
export function warmStartActivations(
  g: GraphBuilder,
  pre: string,
  relu: string,
  k: number,
  own: string,
): { acts: string; warm: string } {
  const flag = g.input(WARM_START_INPUT, 'float32', []);
  const [values, indices] = g.opMulti('TopK', [relu, g.constInt64([k], [1], 'warm_start_k')], 2, {
    axis: 1,
    largest: 1,
    sorted: 0,
  });
  const perVector = g.op(
    'ScatterElements',
    [g.op('ConstantOfShape', [g.op('Shape', [pre])]), indices, values],
    { axis: 1 },
  );
  const warm = g.op('Greater', [flag, g.constFloat([0.5], [], 'warm_start_half')]);
  return { acts: g.op('Where', [warm, perVector, own]), warm };
}
