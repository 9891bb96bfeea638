import { initTopK } from '../train/init.js';
import { type AuxKOptions, buildTopKStepGraph, TOPK_PARAMS, type TopKKernel } from '../train/topk-graph.js';
import { type Architecture, auxkFromRun } from './architecture.js';

/** TopK (Gao et al. 2024): the k largest ReLU'd pre-activations per vector (see topk-graph.ts). */
export interface TopKSettings {
  kind: 'topk';
  /** latents kept per vector */
  k: number;
  /** AuxK on dead latents; the step then takes a dead mask */
  auxk?: AuxKOptions;
  /** default 'sparse' (gathered decoder rows); 'dense' is the reference it is tested against */
  kernel?: TopKKernel;
  /** remove the decoder gradient's component along each (unit) decoder row before Adam; default true */
  projectDecoderGradient?: boolean;
}

export const topK: Architecture<TopKSettings> = {
  name: 'topk',
  auxk: true,
  fromRun: (run) => ({
    kind: 'topk',
    k: run.k,
    ...auxkFromRun(run),
  }),
  runtime: (settings) => ({
    name: 'sae_topk',
    params: TOPK_PARAMS,
    // TopK builds its own step (sparse chunked kernels, see topk-graph.ts and row-sum-ops.ts)
    stepGraph: (shape, adam) =>
      buildTopKStepGraph(
        { ...shape, k: settings.k },
        {
          adam,
          kernel: settings.kernel,
          auxk: settings.auxk,
          projectDecoderGradient: settings.projectDecoderGradient,
        },
      ),
    init: (shape, seed, batch, rows) => initTopK(shape, seed, batch, rows),
    stepInputs: () => ({}),
    auxk: settings.auxk !== undefined,
  }),
  savedAs: (settings) => ({ architecture: 'topk', k: settings.k }),
};
