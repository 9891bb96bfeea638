import type { SaeShape } from './dense-sae-ops.js';

/**
 * When the ReLU-L1 trainer runs its sparse kernel, and with what k_cap (see relu-l1-graph.ts).
 *
 * The sparse kernel gathers B·k_cap decoder rows: worth it while k_cap·d stays well under m·d (the two
 * dense MatMuls it replaces cost 4·B·m·d FLOPs, the gather moves B·k_cap·d floats), and bounded so the
 * gathered [B, k_cap, d] tensor is at most 8× the [B, m] activation matrix the step holds anyway
 * (k_cap ≤ 8·m/d: 256 for d = 768, m = 24,576, 3.2 GB at batch 4,096). Early ReLU training, with
 * thousands of latents firing per vector, stays dense.
 */
export function sparseKLimit(shape: SaeShape): number {
  return Math.min(shape.m - 1, Math.floor((8 * shape.m) / shape.d));
}

/** Headroom over the last step's max_active, so the next batch's busiest vector still fits. */
const MARGIN = 1.25;
const SLACK = 8;

/**
 * k_cap for the next step from this step's max_active (firing latents of the busiest vector), or 0 for
 * the dense kernel. A step whose busiest vector does not fit is detected by the graph (`complete` = 0)
 * and redone densely, so the margin only trades rare reruns against a larger gather.
 */
export function nextKCap(maxActive: number, shape: SaeShape): number {
  const cap = Math.ceil(maxActive * MARGIN) + SLACK;
  return cap <= sparseKLimit(shape) ? cap : 0;
}
