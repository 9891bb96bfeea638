import type { Device } from '@loupe/common';
import { UserInputError } from '@loupe/common';
import { getArchitecture, type TrainableArchitecture } from '../architectures/registry.js';
import { ActivationDataset } from '../data/activation-dataset.js';
import type { ActivationSource } from '../data/activation-source.js';
import { estimateActivationScale } from '../data/normalisation.js';
import { foldActivationScale, type Sae, type SaeWeights } from '../format/sae-model.js';
import type { BDecInit } from '../train/init.js';
import { SaeTrainer } from '../train/sae-trainer.js';
import { DEFAULT_AUXK_COEFFICIENT } from '../train/topk-graph.js';
import { latestCheckpoint, settingsHash, type TrainingCheckpoint, writeCheckpoint } from './checkpoint.js';
import { DENSE_FIRING_FRACTION, LatentActivity } from './latent-activity.js';
import { defaultTopKLearningRate, learningRate } from './lr-schedule.js';

/** Architectures whose training changed in revision 2 (see runHash). */
const WARM_STARTED: ReadonlySet<string> = new Set(['batchtopk', 'jumprelu', 'matryoshka']);

/** Default steps between checkpoints. */
export const DEFAULT_CHECKPOINT_EVERY = 1000;

export interface TrainSaeSettings {
  /** a name in architectures/registry.ts */
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
  /** window for dead latents (and AuxK's dead mask) and for dense ones (see LatentActivity) */
  deadWindowTokens: number;
  /** b_dec from the first batch's mean (default) or geometric median */
  bDecInit?: BDecInit;
  /** topk and batchtopk: AuxK's coefficient α; default 1/32, 0 turns AuxK off */
  auxkCoefficient?: number;
  device: Device;
  intraOpThreads: number;
  /** the service its sessions are counted under (see openSession) */
  owner?: string;
  /**
   * Folder for checkpoints; without it nothing is saved. With it, training resumes from the newest
   * valid checkpoint there, and a checkpoint from other settings or data is refused.
   */
  checkpointDir?: string;
  /** steps between checkpoints (and one after the last step); default 1000 */
  checkpointEvery?: number;
  onProgress?: (progress: TrainProgress) => void;
  /** after each checkpoint is durable */
  onCheckpoint?: (step: number, file: string) => void;
}

export interface TrainProgress {
  step: number;
  steps: number;
  tokens: number;
  /** the training objective (reconstruction, plus AuxK or the sparsity term where used) */
  loss: number;
  l0: number;
  /** latents that have not fired over the last `deadWindowTokens` tokens (or at all, before that many) */
  deadFraction: number;
  /** latents firing on > 10% (DENSE_FIRING_FRACTION) of the tokens of the last complete window */
  denseFraction: number;
  /** tokens the dense figure is over */
  denseWindowTokens: number;
  /** topk with AuxK: sparsify's normalised aux loss (0 while nothing is dead) */
  auxLoss?: number;
}

export interface TrainSaeResult {
  sae: Sae;
  final: TrainProgress;
  lr: number;
  activationScale: number;
  trainVectors: number;
  heldOutVectors: number;
  provider: string;
  /** the step training resumed from (0 for a fresh start) */
  resumedFrom: number;
  deadWindowTokens: number;
  denseThreshold: number;
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
  const checkpointEvery = settings.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  if (!Number.isSafeInteger(checkpointEvery) || checkpointEvery < 1)
    throw new UserInputError(`checkpoint interval must be a whole number ≥ 1, got ${checkpointEvery}`);
  const arch = getArchitecture(settings.architecture);
  const auxkCoefficient = arch.auxk ? (settings.auxkCoefficient ?? DEFAULT_AUXK_COEFFICIENT) : 0;
  const archSettings = arch.fromRun({ k, sparsity: settings.sparsity, auxkCoefficient, steps });
  const hash = runHash(source, settings, auxkCoefficient);
  const resume = settings.checkpointDir ? await latestCheckpoint(settings.checkpointDir, hash) : null;
  const datasetSettings = {
    batchSize,
    shuffleCapacity: settings.shuffleCapacity,
    seed,
    heldOutFraction: settings.heldOutFraction,
  };
  const probe = new ActivationDataset(source, datasetSettings);
  const scale = resume
    ? resume.activationScale
    : settings.normaliseVectors > 0
      ? await estimateActivationScale(probe, settings.normaliseVectors)
      : 1;
  const dataset = new ActivationDataset(source, { ...datasetSettings, scale });
  const lr = settings.lr ?? defaultTopKLearningRate(width);
  const schedule = { base: lr, warmupSteps: Math.min(1000, Math.floor(steps / 10)), decayFraction: 0.2 };

  const batches = dataset.batches();
  const first = await batches.next();
  if (first.done) throw new Error('the dataset produced no batch');
  const trainer = await SaeTrainer.create(
    {
      shape: { d: source.width, m: width },
      architecture: archSettings,
      seed,
      device: settings.device,
      intraOpThreads: settings.intraOpThreads,
      owner: settings.owner,
      bDecInit: settings.bDecInit ?? 'mean',
    },
    first.value.data,
    first.value.rows,
  );
  const activity = new LatentActivity(width, settings.deadWindowTokens);
  let progress: TrainProgress = {
    step: 0,
    steps,
    tokens: 0,
    loss: Number.NaN,
    l0: 0,
    deadFraction: 1,
    denseFraction: 0,
    denseWindowTokens: 0,
  };
  const start = resume?.step ?? 0;
  try {
    let batch = first.value;
    if (resume) {
      if (resume.step > steps)
        throw new Error(`checkpoint at step ${resume.step} is past the run's ${steps} steps`);
      trainer.restore(resume.trainer);
      activity.restore(resume.activity);
      progress = resume.progress as unknown as TrainProgress;
      // Re-seeded stream: batch `step` is the next to train on; the first is already drawn.
      for (let skipped = 1; skipped < resume.step; skipped++) {
        const next = await batches.next();
        if (next.done) throw new Error('the batch stream ended while fast-forwarding');
      }
    }
    for (let step = start; step < steps; step++) {
      if (step > 0) {
        const next = await batches.next();
        if (next.done) throw new Error('the batch stream ended');
        batch = next.value;
      }
      const dead = auxkCoefficient > 0 ? activity.deadMask() : undefined;
      const result = await trainer.step(batch.data, batch.rows, learningRate(schedule, step, steps), dead);
      activity.record(result.latentCounts, batch.rows);
      progress = {
        step: step + 1,
        steps,
        tokens: activity.tokens,
        loss: result.loss,
        l0: result.l0,
        deadFraction: activity.deadFraction(),
        denseFraction: activity.denseFraction(),
        denseWindowTokens: activity.denseWindowTokens,
        ...(result.auxLoss === undefined ? {} : { auxLoss: result.auxLoss }),
      };
      settings.onProgress?.(progress);
      const done = step + 1;
      if (settings.checkpointDir && (done % checkpointEvery === 0 || done === steps)) {
        const checkpoint: TrainingCheckpoint = {
          settingsHash: hash,
          step: done,
          activationScale: scale,
          trainer: trainer.snapshot(),
          activity: activity.snapshot(),
          progress: progress as unknown as Record<string, number>,
        };
        const file = await writeCheckpoint(settings.checkpointDir, checkpoint);
        settings.onCheckpoint?.(done, file);
      }
    }
    const params = trainer.parameters();
    // Copies: the trainer's tensors are released below.
    const trained: SaeWeights = {
      W_enc: params.W_enc.slice(),
      b_enc: params.b_enc.slice(),
      W_dec: params.W_dec.slice(),
      b_dec: params.b_dec.slice(),
    };
    const threshold = trainer.savedThreshold();
    if (threshold) trained.threshold = threshold;
    const weights = scale === 1 ? trained : foldActivationScale(trained, scale);
    return {
      sae: {
        config: {
          ...arch.savedAs(archSettings),
          dIn: source.width,
          dSae: width,
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
      resumedFrom: start,
      deadWindowTokens: settings.deadWindowTokens,
      denseThreshold: DENSE_FIRING_FRACTION,
    };
  } finally {
    await batches.return(undefined);
    await trainer.release();
  }
}

/**
 * What determines the run's result: every training setting (not the device or thread count, which a
 * resumed run may change at the cost of bit-identity) and the data's identity (location, shape, hook).
 */
function runHash(source: ActivationSource, settings: TrainSaeSettings, auxkCoefficient: number): string {
  return settingsHash({
    data: { location: source.location, rows: source.rows, width: source.width, hook: source.hook },
    architecture: settings.architecture,
    width: settings.width,
    k: settings.k,
    sparsity: settings.sparsity,
    steps: settings.steps,
    batchSize: settings.batchSize,
    lr: settings.lr,
    seed: settings.seed,
    shuffleCapacity: settings.shuffleCapacity,
    heldOutFraction: settings.heldOutFraction,
    normaliseVectors: settings.normaliseVectors,
    deadWindowTokens: settings.deadWindowTokens,
    auxkCoefficient,
    // BatchTopK and JumpReLU gained the TopK warm start, and JumpReLU a raw threshold, in training
    // revision 2: their older checkpoints are refused rather than resumed under other rules
    ...(WARM_STARTED.has(settings.architecture) ? { trainingRevision: 2 } : {}),
    // absent for the default, so checkpoints written before the setting existed still resume
    ...(settings.bDecInit && settings.bDecInit !== 'mean' ? { bDecInit: settings.bDecInit } : {}),
  });
}
