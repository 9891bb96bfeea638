import type { Device } from '@loupe/common';
import { UserInputError } from '@loupe/common';
import { ActivationDataset } from '../data/activation-dataset.js';
import type { ActivationSource } from '../data/activation-source.js';
import { estimateActivationScale } from '../data/normalisation.js';
import { foldActivationScale, type Sae, type SaeArchitecture, type SaeWeights } from '../format/sae-model.js';
import type { DenseArchitecture } from '../train/architectures.js';
import { SaeTrainer } from '../train/sae-trainer.js';
import { TopKTrainer } from '../train/trainer.js';
import { LatentActivity } from './latent-activity.js';
import { defaultTopKLearningRate, learningRate } from './lr-schedule.js';

/** Architectures `trainSae` trains. */
export const TRAINABLE_ARCHITECTURES = ['topk', 'batchtopk', 'relu', 'jumprelu'] as const;
export type TrainableArchitecture = (typeof TRAINABLE_ARCHITECTURES)[number];

/** How each trained architecture is saved in SAELens' layout (BatchTopK infers as a JumpReLU with θ). */
const SAVED_AS: Record<TrainableArchitecture, SaeArchitecture> = {
  topk: 'topk',
  batchtopk: 'jumprelu',
  relu: 'standard',
  jumprelu: 'jumprelu',
};

/** What both trainers offer the loop. */
interface StepTrainer {
  step(
    batch: Float32Array,
    batchSize: number,
    lr: number,
  ): Promise<{ loss: number; l0: number; latentCounts: Float32Array }>;
  release(): Promise<void>;
  readonly provider: string;
}

export interface TrainSaeSettings {
  architecture: TrainableArchitecture;
  width: number;
  /** topk and batchtopk: latents kept per vector (on average for batchtopk) */
  k: number;
  /** relu: the L1 coefficient; jumprelu: the L0 coefficient (both warmed up over the first 5% of steps) */
  sparsity?: number;
  steps: number;
  batchSize: number;
  /** default: sparsify's width-scaled rate */
  lr?: number;
  seed: number;
  shuffleCapacity: number;
  heldOutFraction: number;
  /** vectors to estimate the normalisation scale on; 0 trains on raw activations */
  normaliseVectors: number;
  deadWindowTokens: number;
  device: Device;
  intraOpThreads: number;
  onProgress?: (progress: TrainProgress) => void;
}

export interface TrainProgress {
  step: number;
  steps: number;
  tokens: number;
  loss: number;
  l0: number;
  deadFraction: number;
}

export interface TrainSaeResult {
  sae: Sae;
  final: TrainProgress;
  lr: number;
  activationScale: number;
  trainVectors: number;
  heldOutVectors: number;
  provider: string;
}

/**
 * Trains an SAE on a source of activations: shuffled batches into the ONNX Runtime step, with a
 * learning-rate schedule and dead-latent tracking, and returns the weights ready for raw activations
 * (any normalisation scale folded in).
 */
export async function trainSae(
  source: ActivationSource,
  settings: TrainSaeSettings,
): Promise<TrainSaeResult> {
  const { width, k, steps, batchSize, seed } = settings;
  if (k > width) throw new UserInputError(`--k ${k} is larger than --width ${width}`);
  const probe = new ActivationDataset(source, {
    batchSize,
    shuffleCapacity: settings.shuffleCapacity,
    seed,
    heldOutFraction: settings.heldOutFraction,
  });
  const scale =
    settings.normaliseVectors > 0 ? await estimateActivationScale(probe, settings.normaliseVectors) : 1;
  const dataset = new ActivationDataset(source, {
    batchSize,
    shuffleCapacity: settings.shuffleCapacity,
    seed,
    heldOutFraction: settings.heldOutFraction,
    scale,
  });
  const lr = settings.lr ?? defaultTopKLearningRate(width);
  const schedule = { base: lr, warmupSteps: Math.min(1000, Math.floor(steps / 10)), decayFraction: 0.2 };

  const batches = dataset.batches();
  const first = await batches.next();
  if (first.done) throw new Error('the dataset produced no batch');
  const shape = { d: source.width, m: width, k };
  const runtime = { seed, device: settings.device, intraOpThreads: settings.intraOpThreads };
  const topk =
    settings.architecture === 'topk'
      ? await TopKTrainer.create({ shape, ...runtime }, first.value.data, first.value.rows)
      : null;
  const dense = topk
    ? null
    : await SaeTrainer.create(
        { shape: { d: source.width, m: width }, architecture: denseArchitecture(settings), ...runtime },
        first.value.data,
        first.value.rows,
      );
  const trainer: StepTrainer = (topk ?? dense)!;
  const activity = new LatentActivity(width, settings.deadWindowTokens);
  let progress: TrainProgress = { step: 0, steps, tokens: 0, loss: Number.NaN, l0: 0, deadFraction: 1 };
  try {
    let batch = first.value;
    for (let step = 0; step < steps; step++) {
      if (step > 0) {
        const next = await batches.next();
        if (next.done) throw new Error('the batch stream ended');
        batch = next.value;
      }
      const result = await trainer.step(batch.data, batch.rows, learningRate(schedule, step, steps));
      activity.record(result.latentCounts, batch.rows);
      progress = {
        step: step + 1,
        steps,
        tokens: activity.tokens,
        loss: result.loss,
        l0: result.l0,
        deadFraction: activity.deadFraction(),
      };
      settings.onProgress?.(progress);
    }
    const params = (topk ?? dense)!.parameters();
    // Copies: the trainer's tensors are released below.
    const trained: SaeWeights = {
      W_enc: params.W_enc.slice(),
      b_enc: params.b_enc.slice(),
      W_dec: params.W_dec.slice(),
      b_dec: params.b_dec.slice(),
    };
    const threshold = inferenceThreshold(settings.architecture, dense, width);
    if (threshold) trained.threshold = threshold;
    const weights = scale === 1 ? trained : foldActivationScale(trained, scale);
    return {
      sae: {
        config: {
          architecture: SAVED_AS[settings.architecture],
          dIn: source.width,
          dSae: width,
          ...(settings.architecture === 'topk' ? { k } : {}),
          hookName: source.hook,
          modelName: source.model,
          applyBDecToInput: true,
          normalizeActivations: 'none',
          activationScale: scale,
        },
        weights,
      },
      final: progress,
      lr,
      activationScale: scale,
      trainVectors: dataset.trainRows,
      heldOutVectors: dataset.heldOutRows,
      provider: trainer.provider,
    };
  } finally {
    await batches.return(undefined);
    await trainer.release();
  }
}

/** The step graph's settings for the dense architectures; sparsity coefficients warm up over 5% of steps. */
function denseArchitecture(settings: TrainSaeSettings): DenseArchitecture {
  const warmup = Math.floor(settings.steps / 20);
  switch (settings.architecture) {
    case 'batchtopk':
      return { kind: 'batchtopk', k: settings.k };
    case 'relu':
      return { kind: 'relu', l1: settings.sparsity ?? 0.5, l1WarmupSteps: warmup };
    case 'jumprelu':
      return { kind: 'jumprelu', l0: settings.sparsity ?? 0.1, l0WarmupSteps: warmup };
    default:
      throw new Error(`${settings.architecture} is not a dense architecture`);
  }
}

/** JumpReLU's learnt θ = exp(log θ); BatchTopK's running estimate of its smallest kept activation. */
function inferenceThreshold(
  architecture: TrainableArchitecture,
  trainer: SaeTrainer | null,
  width: number,
): Float32Array | undefined {
  if (!trainer) return undefined;
  if (architecture === 'jumprelu') return Float32Array.from(trainer.parameters().log_threshold!, Math.exp);
  if (architecture === 'batchtopk') {
    const theta = trainer.inferenceThreshold?.value;
    if (theta === undefined) throw new Error('BatchTopK finished without a threshold estimate');
    return new Float32Array(width).fill(theta);
  }
  return undefined;
}
