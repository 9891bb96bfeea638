import { SAE_PARAMS } from '../train/dense-sae-ops.js';
import { initTopK } from '../train/init.js';
import { L1_INPUT, reluL1Pass } from '../train/relu-l1-graph.js';
import { buildStepGraph } from '../train/sae-graphs.js';
import { sparsityWarmupSteps, warmedUpCoefficient } from '../train/sparsity-schedule.js';
import type { Architecture } from './architecture.js';

/** ReLU SAE with decoder-norm-weighted L1 (see relu-l1-graph.ts). */
export interface ReluL1Settings {
  kind: 'relu';
  /** final L1 coefficient λ */
  l1: number;
  /** steps over which λ rises linearly from 0 */
  l1WarmupSteps: number;
  /** initial decoder row norm; default 0.1 */
  initialDecoderNorm?: number;
  /**
   * `auto` (default): the sparse kernel whenever the last step's sparsity allows it (see
   * sparse-kernel-choice.ts), the dense one otherwise; `dense`: always dense (the reference).
   */
  kernel?: 'auto' | 'dense';
}

const NAME = 'sae_relu_l1';
/** λ when the run asks for none */
const DEFAULT_L1 = 0.5;

export const reluL1: Architecture<ReluL1Settings> = {
  name: 'relu',
  auxk: false,
  fromRun: (run) => ({
    kind: 'relu',
    l1: run.sparsity ?? DEFAULT_L1,
    l1WarmupSteps: sparsityWarmupSteps(run.steps),
  }),
  runtime: (settings) => ({
    name: NAME,
    params: SAE_PARAMS,
    stepGraph: (shape, adam) => buildStepGraph(shape, reluL1Pass, NAME, adam),
    ...(settings.kernel === 'dense'
      ? {}
      : {
          sparseStepGraph: (shape, adam) =>
            buildStepGraph(shape, (g, s) => reluL1Pass(g, s, 'sparse'), `${NAME}_sparse`, adam),
        }),
    init: (shape, seed, batch, rows) =>
      initTopK(shape, seed, batch, rows, settings.initialDecoderNorm ?? 0.1),
    stepInputs: (done) => ({
      [L1_INPUT]: warmedUpCoefficient(settings.l1, settings.l1WarmupSteps, done),
    }),
  }),
  savedAs: () => ({ architecture: 'standard' }),
};
