import { batchTopKPass } from '../train/batchtopk-graph.js';
import { SAE_PARAMS } from '../train/dense-sae-ops.js';
import { RunningThreshold } from '../train/inference-threshold.js';
import { initTopK } from '../train/init.js';
import { buildStepGraph } from '../train/sae-graphs.js';
import type { AuxKOptions } from '../train/topk-graph.js';
import { WARM_START_INPUT, warmStartFlag, warmStartSteps } from '../train/topk-warm-start.js';
import { type Architecture, auxkFromRun } from './architecture.js';

/** BatchTopK (see batchtopk-graph.ts). */
export interface BatchTopKSettings {
  kind: 'batchtopk';
  /** mean latents kept per vector; k·B are kept per batch */
  k: number;
  /** rate of the moving average that estimates the inference threshold; default 0.01 */
  thresholdRate?: number;
  /** AuxK on dead latents, as for TopK; the step then takes a dead mask */
  auxk?: AuxKOptions;
  /** first steps that select per vector (TopK) before the batch-wide cut; see topk-warm-start.ts */
  warmStartSteps?: number;
}

const NAME = 'sae_batchtopk';

/** Trained as BatchTopK, saved (as Bussmann et al. infer it) as a JumpReLU whose θ is the running estimate. */
export const batchTopK: Architecture<BatchTopKSettings> = {
  name: 'batchtopk',
  auxk: true,
  fromRun: (run) => ({
    kind: 'batchtopk',
    k: run.k,
    ...auxkFromRun(run),
    warmStartSteps: warmStartSteps(run.steps),
  }),
  runtime: (settings) => {
    const threshold = new RunningThreshold(settings.thresholdRate);
    const warmSteps = settings.warmStartSteps ?? 0;
    return {
      name: NAME,
      params: SAE_PARAMS,
      stepGraph: (shape, adam) =>
        buildStepGraph(
          shape,
          (g, s) => batchTopKPass(g, { ...s, k: settings.k }, settings.auxk, warmSteps > 0),
          NAME,
          adam,
        ),
      init: (shape, seed, batch, rows) => initTopK(shape, seed, batch, rows),
      stepInputs: (done): Record<string, number> =>
        warmSteps > 0 ? { [WARM_START_INPUT]: warmStartFlag(warmSteps, done) } : {},
      threshold,
      auxk: settings.auxk !== undefined,
      savedThreshold: (_params, m) => {
        if (threshold.value === undefined) throw new Error('BatchTopK finished without a threshold estimate');
        return new Float32Array(m).fill(threshold.value);
      },
    };
  },
  savedAs: () => ({ architecture: 'jumprelu' }),
};
