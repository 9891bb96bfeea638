import { batchTopKPass } from '../train/batchtopk-graph.js';
import { SAE_PARAMS } from '../train/dense-sae-ops.js';
import { RunningThreshold } from '../train/inference-threshold.js';
import { initTopK } from '../train/init.js';
import { buildStepGraph } from '../train/sae-graphs.js';
import type { AuxKOptions } from '../train/topk-graph.js';
import { WARM_START_INPUT, warmStartFlag, warmStartSteps } from '../train/topk-warm-start.js';
import { type Architecture, auxkFromRun } from './architecture.js';

/**
 * Matryoshka BatchTopK (Bussmann, Nabeshima, Karvonen & Nanda 2025): BatchTopK whose first latents form
 * nested dictionaries, each trained to reconstruct on its own (see `prefixes` in batchtopk-graph.ts).
 * The small prefixes must carry the general directions, so a parent direction keeps its own latent
 * instead of being absorbed into its children's.
 */
export interface MatryoshkaSettings {
  kind: 'matryoshka';
  /** mean latents kept per vector, over the whole dictionary */
  k: number;
  /** widths of the nested dictionaries below the full one, increasing; default m/4, m/2 */
  prefixes?: readonly number[];
  /** rate of the moving average that estimates the inference threshold; default 0.01 */
  thresholdRate?: number;
  auxk?: AuxKOptions;
  /** first steps that select per vector (TopK), as for BatchTopK */
  warmStartSteps?: number;
}

const NAME = 'sae_matryoshka';

/**
 * The default nested widths: a quarter and a half of the full width. The nesting trades exact recovery
 * of flat dictionaries for less absorption of hierarchical ones. Measured on the synthetic benchmark
 * (512 equally frequent directions, width 768, 600 steps): sixteenths to halves 60% recovered (the
 * 48-latent prefix must reconstruct alone, so its latents become sums of directions), quarter and half
 * 75%, half alone 87%; on the parent-and-children case (matryoshka-absorption.test.ts) quarter and half
 * keep the parent latent firing on 74% of vectors with a child (BatchTopK 25%), half alone on 36%.
 */
export function defaultPrefixes(m: number): number[] {
  return [4, 2].map((f) => Math.floor(m / f)).filter((w) => w >= 1 && w < m);
}

/** Trained as Matryoshka BatchTopK, saved like BatchTopK as a JumpReLU with the running θ. */
export const matryoshka: Architecture<MatryoshkaSettings> = {
  name: 'matryoshka',
  auxk: true,
  fromRun: (run) => ({
    kind: 'matryoshka',
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
      stepGraph: (shape, adam) => {
        const prefixes = settings.prefixes ?? defaultPrefixes(shape.m);
        if (prefixes.some((w, i) => !(w >= 1 && w < shape.m && (i === 0 || w > prefixes[i - 1]))))
          throw new Error(
            `Matryoshka prefixes must increase within 1..${shape.m - 1}: ${prefixes.join(', ')}`,
          );
        return buildStepGraph(
          shape,
          (g, s) => batchTopKPass(g, { ...s, k: settings.k }, settings.auxk, warmSteps > 0, prefixes),
          NAME,
          adam,
        );
      },
      init: (shape, seed, batch, rows) => initTopK(shape, seed, batch, rows),
      stepInputs: (done): Record<string, number> =>
        warmSteps > 0 ? { [WARM_START_INPUT]: warmStartFlag(warmSteps, done) } : {},
      threshold,
      auxk: settings.auxk !== undefined,
      savedThreshold: (_params, m) => {
        if (threshold.value === undefined)
          throw new Error('Matryoshka finished without a threshold estimate');
        return new Float32Array(m).fill(threshold.value);
      },
    };
  },
  savedAs: () => ({ architecture: 'jumprelu' }),
};
