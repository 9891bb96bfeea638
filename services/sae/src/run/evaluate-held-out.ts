import type { ActivationDataset } from '../data/activation-dataset.js';
import { decode, encode, inputScales } from '../format/sae-forward.js';
import { ReconstructionAccumulator, type ReconstructionMetrics } from '../format/sae-metrics.js';
import type { Sae } from '../format/sae-model.js';

export interface HeldOutMetrics extends ReconstructionMetrics {
  l0: number;
}

/**
 * Reconstruction metrics of an SAE on up to `maxVectors` held-out vectors, with the plain-TypeScript
 * forward pass: a quick figure at the end of training, not the full evaluation (`loupe sae eval`). The
 * dataset must yield raw activations (no scale), as the SAE's weights take them.
 */
export async function evaluateHeldOut(
  sae: Sae,
  dataset: ActivationDataset,
  maxVectors: number,
): Promise<HeldOutMetrics | null> {
  const accumulator = new ReconstructionAccumulator(sae.config.dIn);
  let remaining = Math.min(maxVectors, dataset.heldOutRows);
  if (remaining === 0) return null;
  let active = 0;
  for await (const batch of dataset.heldOut(Math.min(remaining, 1024))) {
    const rows = Math.min(batch.rows, remaining);
    const x = batch.data.subarray(0, rows * sae.config.dIn);
    const acts = encode(sae, x, rows);
    for (const a of acts) if (a !== 0) active++;
    accumulator.add(x, decode(sae, acts, rows, inputScales(sae, x, rows)), rows);
    remaining -= rows;
    if (remaining === 0) break;
  }
  const metrics = accumulator.result();
  return { ...metrics, l0: active / metrics.vectors };
}
