import type { Device } from '@loupe/common';
import { UserInputError } from '@loupe/common';
import { ActivationDataset } from '../data/activation-dataset.js';
import type { ActivationSource } from '../data/activation-source.js';
import { estimateActivationScale } from '../data/normalisation.js';
import { foldActivationScale, type Sae } from '../format/sae-model.js';
import { TopKTrainer } from '../train/trainer.js';
import { LatentActivity } from './latent-activity.js';
import { defaultTopKLearningRate, learningRate } from './lr-schedule.js';

/** Architectures `trainSae` can train today; the others are readable and writable but not trainable yet. */
export const TRAINABLE_ARCHITECTURES = ['topk'] as const;
export type TrainableArchitecture = (typeof TRAINABLE_ARCHITECTURES)[number];

export interface TrainSaeSettings {
  architecture: TrainableArchitecture;
  width: number;
  k: number;
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
  const trainer = await TopKTrainer.create(
    { shape, seed, device: settings.device, intraOpThreads: settings.intraOpThreads },
    first.value.data,
    first.value.rows,
  );
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
    const params = trainer.parameters();
    // Copies: the trainer's tensors are released below.
    const trained = {
      W_enc: params.W_enc.slice(),
      b_enc: params.b_enc.slice(),
      W_dec: params.W_dec.slice(),
      b_dec: params.b_dec.slice(),
    };
    const weights = scale === 1 ? trained : foldActivationScale(trained, scale);
    return {
      sae: {
        config: {
          architecture: 'topk',
          dIn: source.width,
          dSae: width,
          k,
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
