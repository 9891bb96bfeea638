import type { GraphBuilder } from '@loupe/common';
import type { ArchPass } from './arch-pass.js';
import { batchTopKPass } from './batchtopk-graph.js';
import { SAE_PARAMS, type SaeArrays, type SaeParam, type SaeShape } from './dense-sae-ops.js';
import { RunningThreshold } from './inference-threshold.js';
import { initTopK } from './init.js';
import { JUMPRELU_PARAMS, jumpReluPass, L0_INPUT } from './jumprelu-graph.js';
import { L1_INPUT, reluL1Pass } from './relu-l1-graph.js';
import { warmedUpCoefficient } from './sparsity-schedule.js';
import type { AuxKOptions } from './topk-graph.js';

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

/** BatchTopK (see batchtopk-graph.ts). */
export interface BatchTopKSettings {
  kind: 'batchtopk';
  /** mean latents kept per vector; k·B are kept per batch */
  k: number;
  /** rate of the moving average that estimates the inference threshold; default 0.01 */
  thresholdRate?: number;
  /** AuxK on dead latents, as for TopK; the step then takes a dead mask */
  auxk?: AuxKOptions;
}

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
}

export type DenseArchitecture = ReluL1Settings | BatchTopKSettings | JumpReluSettings;

export type SaeParameters = SaeArrays<Float32Array>;

/** Everything the generic trainer needs to know about one architecture. */
export interface ArchitectureRuntime {
  name: string;
  params: readonly SaeParam[];
  pass: (g: GraphBuilder, shape: SaeShape) => ArchPass;
  /**
   * A second pass computing the same step from the firing latents alone, given a k_cap input; the
   * trainer runs it when the last step's `max_active` allows (ReLU-L1 only).
   */
  sparsePass?: (g: GraphBuilder, shape: SaeShape) => ArchPass;
  init(shape: SaeShape, seed: number, firstBatch: Float32Array, batchSize: number): SaeParameters;
  /** scalar graph inputs for the step that follows `completedSteps` steps */
  stepInputs(completedSteps: number): Record<string, number>;
  /** BatchTopK's inference threshold, fed by each step's `min_kept` */
  threshold?: RunningThreshold;
  /** whether the step graph takes AuxK's dead mask */
  auxk?: boolean;
}

export function architectureRuntime(arch: DenseArchitecture): ArchitectureRuntime {
  switch (arch.kind) {
    case 'relu':
      return {
        name: 'sae_relu_l1',
        params: SAE_PARAMS,
        pass: reluL1Pass,
        ...(arch.kernel === 'dense' ? {} : { sparsePass: (g, shape) => reluL1Pass(g, shape, 'sparse') }),
        init: (shape, seed, batch, rows) =>
          initTopK(shape, seed, batch, rows, arch.initialDecoderNorm ?? 0.1),
        stepInputs: (done) => ({ [L1_INPUT]: warmedUpCoefficient(arch.l1, arch.l1WarmupSteps, done) }),
      };
    case 'batchtopk':
      return {
        name: 'sae_batchtopk',
        params: SAE_PARAMS,
        pass: (g, shape) => batchTopKPass(g, { ...shape, k: arch.k }, arch.auxk),
        init: (shape, seed, batch, rows) => initTopK(shape, seed, batch, rows),
        stepInputs: () => ({}),
        threshold: new RunningThreshold(arch.thresholdRate),
        auxk: arch.auxk !== undefined,
      };
    case 'jumprelu':
      return {
        name: 'sae_jumprelu',
        params: JUMPRELU_PARAMS,
        pass: (g, shape) => jumpReluPass(g, shape, arch.bandwidth),
        init: (shape, seed, batch, rows) => ({
          ...scaleEncoder(initTopK(shape, seed, batch, rows), arch.initialEncoderScale ?? 1),
          log_threshold: new Float32Array(shape.m).fill(Math.log(arch.initialThreshold ?? 0.001)),
        }),
        stepInputs: (done) => ({ [L0_INPUT]: warmedUpCoefficient(arch.l0, arch.l0WarmupSteps, done) }),
      };
  }
}

function scaleEncoder<T extends { W_enc: Float32Array }>(params: T, scale: number): T {
  if (scale !== 1) params.W_enc = params.W_enc.map((v) => v * scale);
  return params;
}
