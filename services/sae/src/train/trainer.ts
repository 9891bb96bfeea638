import { openSession } from '@loupe/capture';
import type { Device } from '@loupe/common';
import ort from 'onnxruntime-node';
import { initTopK, type TopKParameters } from './init.js';
import type { StepGraphOptions } from './topk-graph.js';
import { buildTopKStepGraph, io, paramShape, TOPK_PARAMS, type TopKShape } from './topk-graph.js';

export interface TopKTrainerSettings extends StepGraphOptions {
  shape: TopKShape;
  seed: number;
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
}

type State = Record<string, ort.Tensor>;

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
    return new TopKTrainer(settings.shape, session, provider, initial);
  }

  get stepCount(): number {
    return this.steps;
  }

  /** One Adam step on a batch of row-major vectors [batchSize, d]. */
  async step(batch: Float32Array, batchSize: number, lr: number): Promise<StepResult> {
    const feeds: State = {
      ...this.state,
      x: new ort.Tensor('float32', batch, [batchSize, this.shape.d]),
      lr: new ort.Tensor('float32', Float32Array.of(lr), []),
      t: new ort.Tensor('float32', Float32Array.of(this.steps + 1), []),
    };
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
    };
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
