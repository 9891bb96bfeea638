import type { SaeConfig } from '../format/sae-model.js';
import type { AdamSettings } from '../train/adam-ops.js';
import type { SaeArrays, SaeParam, SaeShape } from '../train/dense-sae-ops.js';
import type { RunningThreshold } from '../train/inference-threshold.js';
import type { AuxKOptions } from '../train/topk-graph.js';

/**
 * One SAE architecture, as SAELens keeps one per file: its settings, its training step, its
 * initialisation and how the trained SAE is saved. Each lives in its own file in this folder and is
 * listed once in registry.ts; the trainer, `trainSae`, the jobs and the CLI reach it only through there.
 *
 * `S` is the architecture's settings, tagged with `kind` (the registry's name for it, `--arch` on the
 * command line and `architecture` in a TrainRequest).
 */
export interface Architecture<S extends { kind: string }> {
  readonly name: S['kind'];
  /** whether the step takes AuxK's dead mask; a run's AuxK coefficient is then used (default 1/32) */
  readonly auxk: boolean;
  /** The settings `trainSae` trains with, from the run's architecture-independent ones. */
  fromRun(run: RunOptions): S;
  /** What one trainer uses of the architecture: its graphs, initialisation and per-step inputs. */
  runtime(settings: S): ArchitectureRuntime;
  /** SAELens' cfg.json `architecture` the trained SAE is saved as, and the fields that go with it. */
  savedAs(settings: S): Pick<SaeConfig, 'architecture' | 'k'>;
}

/** What a training run gives every architecture; each takes what it uses. */
export interface RunOptions {
  /** latents kept per vector (exactly, or on average) */
  k: number;
  /** the sparsity coefficient asked for; each architecture has its own default */
  sparsity?: number;
  /** AuxK's α, 0 for none; only passed on to architectures with `auxk` */
  auxkCoefficient: number;
  /** total steps, for warm-up schedules */
  steps: number;
}

/** AuxK's settings for a run, for architectures with `auxk`: none when its coefficient is 0. */
export function auxkFromRun(run: RunOptions): { auxk?: AuxKOptions } {
  return run.auxkCoefficient > 0 ? { auxk: { coefficient: run.auxkCoefficient } } : {};
}

export type SaeParameters = SaeArrays<Float32Array>;

/**
 * Everything the trainer needs from one architecture for one run. Every step graph follows the same
 * convention (see dense-sae-ops.ts's `saeIo`): inputs x, the parameters, their `m_`/`v_` moments, lr, t,
 * `stepInputs`' scalars (and AuxK's inputs with `auxk`); outputs `new_*` parameters and moments, loss,
 * l0, latent_counts, and scalar extras (mse, aux_loss, min_kept, ...).
 */
export interface ArchitectureRuntime {
  /** graph name stem, e.g. sae_topk */
  name: string;
  params: readonly SaeParam[];
  stepGraph(shape: SaeShape, adam?: AdamSettings): Uint8Array;
  /**
   * The same step computed from the firing latents alone, given a k_cap input; the trainer runs it when
   * the last step's `max_active` allows (ReLU-L1 only).
   */
  sparseStepGraph?(shape: SaeShape, adam?: AdamSettings): Uint8Array;
  init(shape: SaeShape, seed: number, firstBatch: Float32Array, batchSize: number): SaeParameters;
  /** scalar graph inputs for the step that follows `completedSteps` steps */
  stepInputs(completedSteps: number): Record<string, number>;
  /** BatchTopK's inference threshold, fed by each step's `min_kept` */
  threshold?: RunningThreshold;
  /** whether the step graph takes AuxK's dead mask */
  auxk?: boolean;
  /** The `threshold` weights saved with the SAE (JumpReLU-style inference), from the trained state. */
  savedThreshold?(params: SaeParameters, m: number): Float32Array;
}
