import { initTopK } from '../train/init.js';
import { JUMPRELU_PARAMS, jumpReluPass, L0_INPUT } from '../train/jumprelu-graph.js';
import { buildStepGraph } from '../train/sae-graphs.js';
import { sparsityWarmupSteps, warmedUpCoefficient } from '../train/sparsity-schedule.js';
import { WARM_START_INPUT, warmStartFlag, warmStartSteps } from '../train/topk-warm-start.js';
import type { Architecture } from './architecture.js';

/** JumpReLU (see jumprelu-graph.ts). */
export interface JumpReluSettings {
  kind: 'jumprelu';
  /** final L0 coefficient λ */
  l0: number;
  /** steps over which λ rises linearly from 0 */
  l0WarmupSteps: number;
  /** kernel bandwidth ε; default 0.001 (the paper's, for unit mean squared norm activations) */
  bandwidth?: number;
  /** initial θ for every latent; default 0.001 as in the paper */
  initialThreshold?: number;
  /** W_enc starts as this multiple of W_decᵀ; default 1 */
  initialEncoderScale?: number;
  /**
   * first steps that gate by per-vector TopK (k = `warmStartK`) while θ learns, before the thresholds
   * take over; see topk-warm-start.ts. None by default when built directly; runs get half their steps.
   */
  warmStartSteps?: number;
  warmStartK?: number;
}

const NAME = 'sae_jumprelu';
/** λ when the run asks for none */
const DEFAULT_L0 = 0.1;

export const jumpRelu: Architecture<JumpReluSettings> = {
  name: 'jumprelu',
  auxk: false,
  fromRun: (run) => ({
    kind: 'jumprelu',
    l0: run.sparsity ?? DEFAULT_L0,
    l0WarmupSteps: sparsityWarmupSteps(run.steps),
    warmStartSteps: warmStartSteps(run.steps),
    warmStartK: run.k,
  }),
  runtime: (settings) => {
    const warmSteps = settings.warmStartK === undefined ? 0 : (settings.warmStartSteps ?? 0);
    return {
      name: NAME,
      params: JUMPRELU_PARAMS,
      stepGraph: (shape, adam) =>
        buildStepGraph(
          shape,
          (g, s) => jumpReluPass(g, s, settings.bandwidth, warmSteps > 0 ? settings.warmStartK : undefined),
          NAME,
          adam,
        ),
      init: (shape, seed, batch, rows) => ({
        ...scaleEncoder(initTopK(shape, seed, batch, rows), settings.initialEncoderScale ?? 1),
        threshold: new Float32Array(shape.m).fill(settings.initialThreshold ?? 0.001),
      }),
      stepInputs: (done) => ({
        [L0_INPUT]: warmedUpCoefficient(settings.l0, settings.l0WarmupSteps, done),
        ...(warmSteps > 0 ? { [WARM_START_INPUT]: warmStartFlag(warmSteps, done) } : {}),
      }),
      savedThreshold: (params) => Float32Array.from(params.threshold!),
    };
  },
  savedAs: () => ({ architecture: 'jumprelu' }),
};

function scaleEncoder<T extends { W_enc: Float32Array }>(params: T, scale: number): T {
  if (scale !== 1) params.W_enc = params.W_enc.map((v) => v * scale);
  return params;
}
