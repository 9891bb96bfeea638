import type { Device } from '@loupe/common';
import { openSession } from '@loupe/model';
import ort from 'onnxruntime-node';
import { type BDecInit, decoderBias, initTopK, type TopKParameters } from './init.js';
import type { StepGraphOptions } from './topk-graph.js';
import {
  AUXK_INPUTS,
  buildTopKStepGraph,
  io,
  paramShape,
  TOPK_PARAMS,
  type TopKShape,
} from './topk-graph.js';
import { copyTensors, restoreTensors, type TrainerState } from './trainer-state.js';

export interface TopKTrainerSettings extends StepGraphOptions {
  shape: TopKShape;
  seed: number;
  /** default mean */
  bDecInit?: BDecInit;
  device: Device;
  /** 0 lets ONNX Runtime pick; fix it for bit-identical CPU runs across machines */
  intraOpThreads: number;
}

export interface StepResult {
  loss: number;
  /** mean number of nonzero latents per vector */
  l0: number;
  /** how many vectors in the batch fired each latent, for dead/dense tracking */
  latentCounts: Float32Array;
  /** the k selected latents per vector, [batch, k] */
  topIndices: BigInt64Array;
  /** with AuxK: the reconstruction term alone, and sparsify's normalised aux figure (0 when none is dead) */
  mse?: number;
  auxLoss?: number;
}

/**
 * AuxK's per-step inputs from a dead mask, as sparsify sets them: k_aux = min(d/2, dead) and a scale
 * min(dead / (d/2), 1). With nothing dead the scale is 0 and k_aux 1 (the graph's TopK needs k ≥ 1).
 */
export function auxKInputs(d: number, dead: ArrayLike<number> | undefined): { kAux: number; scale: number } {
  let count = 0;
  if (dead) for (let i = 0; i < dead.length; i++) if (dead[i]) count++;
  const half = Math.max(1, Math.floor(d / 2));
  if (count === 0) return { kAux: 1, scale: 0 };
  return { kAux: Math.min(half, count), scale: Math.min(count / half, 1) };
}

type State = Record<string, ort.Tensor>;

/** The AuxK graph inputs for a dead mask (see auxKInputs). */
export function auxKFeeds(shape: { d: number; m: number }, dead: ArrayLike<number> | undefined): State {
  const { kAux, scale } = auxKInputs(shape.d, dead);
  const mask = new Float32Array(shape.m);
  if (dead) for (let i = 0; i < mask.length; i++) mask[i] = dead[i] ? 1 : 0;
  return {
    [AUXK_INPUTS.deadMask]: new ort.Tensor('float32', mask, [shape.m]),
    [AUXK_INPUTS.kAux]: new ort.Tensor('int64', BigInt64Array.of(BigInt(kAux)), [1]),
    [AUXK_INPUTS.scale]: new ort.Tensor('float32', Float32Array.of(scale), []),
  };
}

/**
 * Runs TopK SAE training steps in one ONNX Runtime session. Parameters and Adam moments live as tensors
 * on our side: each step feeds them in and takes the step's outputs as the next state, without copying.
 */
export class TopKTrainer {
  private state: State;
  private steps = 0;

  private constructor(
    readonly shape: TopKShape,
    private readonly session: ort.InferenceSession,
    readonly provider: string,
    initial: TopKParameters,
    private readonly auxk: boolean,
  ) {
    this.state = {};
    for (const p of TOPK_PARAMS) {
      const dims = paramShape(shape, p);
      this.state[p] = new ort.Tensor('float32', initial[p], dims);
      this.state[io.moment('m', p)] = new ort.Tensor('float32', new Float32Array(initial[p].length), dims);
      this.state[io.moment('v', p)] = new ort.Tensor('float32', new Float32Array(initial[p].length), dims);
    }
  }

  /** Builds the step graph, opens a session, and initialises parameters from the seed and a first batch. */
  static async create(
    settings: TopKTrainerSettings,
    firstBatch: Float32Array,
    batchSize: number,
  ): Promise<TopKTrainer> {
    const graph = buildTopKStepGraph(settings.shape, settings);
    const { session, provider } = await openSession(graph, {
      device: settings.device,
      intraOpThreads: settings.intraOpThreads,
    });
    const initial = initTopK(settings.shape, settings.seed, firstBatch, batchSize);
    if (settings.bDecInit === 'geometric-median')
      initial.b_dec = decoderBias('geometric-median', firstBatch, batchSize, settings.shape.d);
    return new TopKTrainer(settings.shape, session, provider, initial, settings.auxk !== undefined);
  }

  get stepCount(): number {
    return this.steps;
  }

  /**
   * One Adam step on a batch of row-major vectors [batchSize, d]. `dead` (1 per dead latent) feeds AuxK
   * when the trainer was built with it; ignored otherwise.
   */
  async step(
    batch: Float32Array,
    batchSize: number,
    lr: number,
    dead?: ArrayLike<number>,
  ): Promise<StepResult> {
    const feeds: State = {
      ...this.state,
      x: new ort.Tensor('float32', batch, [batchSize, this.shape.d]),
      lr: new ort.Tensor('float32', Float32Array.of(lr), []),
      t: new ort.Tensor('float32', Float32Array.of(this.steps + 1), []),
    };
    if (this.auxk) Object.assign(feeds, auxKFeeds(this.shape, dead));
    const out = await this.session.run(feeds);
    const next: State = {};
    for (const p of TOPK_PARAMS) {
      next[p] = out[io.updated(p)];
      next[io.moment('m', p)] = out[io.updatedMoment('m', p)];
      next[io.moment('v', p)] = out[io.updatedMoment('v', p)];
    }
    this.state = next;
    this.steps++;
    return {
      loss: (out.loss.data as Float32Array)[0],
      l0: (out.l0.data as Float32Array)[0],
      latentCounts: out.latent_counts.data as Float32Array,
      topIndices: out.top_indices.data as BigInt64Array,
      ...(this.auxk
        ? { mse: (out.mse.data as Float32Array)[0], auxLoss: (out.aux_loss.data as Float32Array)[0] }
        : {}),
    };
  }

  /** Parameters, moments and step count, copied, for a checkpoint. */
  snapshot(): TrainerState {
    return { steps: this.steps, tensors: copyTensors(this.state), scalars: {} };
  }

  /** Continues from a snapshot exactly where it was taken. */
  restore(saved: TrainerState): void {
    this.state = restoreTensors(this.state, saved.tensors);
    this.steps = saved.steps;
  }

  /** Current parameters (views of the live tensors: copy before the next step if they must be kept). */
  parameters(): TopKParameters {
    const result = {} as TopKParameters;
    for (const p of TOPK_PARAMS) result[p] = this.state[p].data as Float32Array;
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
