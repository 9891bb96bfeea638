import { openSession } from '@loupe/capture';
import type { Device } from '@loupe/common';
import ort from 'onnxruntime-node';
import type { AdamSettings } from './adam-ops.js';
import {
  type ArchitectureRuntime,
  architectureRuntime,
  type DenseArchitecture,
  type SaeParameters,
} from './architectures.js';
import { MIN_KEPT_OUTPUT } from './batchtopk-graph.js';
import { type SaeParam, type SaeShape, saeIo, saeParamShape } from './dense-sae-ops.js';
import type { RunningThreshold } from './inference-threshold.js';
import { buildStepGraph } from './sae-graphs.js';
import { auxKFeeds } from './trainer.js';
import { copyTensors, restoreTensors, type TrainerState } from './trainer-state.js';

const THRESHOLD_SCALAR = 'inference_threshold';

export interface SaeTrainerSettings {
  shape: SaeShape;
  architecture: DenseArchitecture;
  seed: number;
  device: Device;
  /** 0 lets ONNX Runtime pick; fix it for bit-identical CPU runs across machines */
  intraOpThreads: number;
  adam?: AdamSettings;
}

export interface SaeStepResult {
  /** reconstruction plus the sparsity term at this step's coefficient */
  loss: number;
  /** reconstruction term alone, (1/B)·Σ_b ||x_b − x̂_b||² */
  mse: number;
  /** mean number of nonzero latents per vector */
  l0: number;
  /** how many vectors in the batch fired each latent, for dead/dense tracking */
  latentCounts: Float32Array;
  /** the scalar inputs this step ran with (the warmed-up sparsity coefficient) */
  inputs: Record<string, number>;
  /** every other scalar output of the step graph (sparsity_loss, min_kept, ...) */
  extras: Record<string, number>;
  /** with AuxK: sparsify's normalised aux figure (also in extras as aux_loss) */
  auxLoss?: number;
}

type State = Record<string, ort.Tensor>;

const CORE_OUTPUTS = new Set(['loss', 'mse', 'l0', 'latent_counts']);

/**
 * Trains the dense-activation architectures (ReLU-L1, BatchTopK, JumpReLU) in one ONNX Runtime session,
 * the same way TopKTrainer does for TopK: parameters and Adam moments are fed in and taken back each step.
 */
export class SaeTrainer {
  private state: State = {};
  private steps = 0;

  private constructor(
    readonly shape: SaeShape,
    readonly runtime: ArchitectureRuntime,
    private readonly session: ort.InferenceSession,
    readonly provider: string,
    initial: SaeParameters,
  ) {
    for (const p of runtime.params) {
      const dims = saeParamShape(shape, p);
      const values = initial[p] as Float32Array;
      this.state[p] = new ort.Tensor('float32', values, dims);
      this.state[saeIo.moment('m', p)] = new ort.Tensor('float32', new Float32Array(values.length), dims);
      this.state[saeIo.moment('v', p)] = new ort.Tensor('float32', new Float32Array(values.length), dims);
    }
  }

  static async create(
    settings: SaeTrainerSettings,
    firstBatch: Float32Array,
    batchSize: number,
  ): Promise<SaeTrainer> {
    const runtime = architectureRuntime(settings.architecture);
    const graph = buildStepGraph(settings.shape, runtime.pass, runtime.name, settings.adam);
    const { session, provider } = await openSession(graph, {
      device: settings.device,
      intraOpThreads: settings.intraOpThreads,
    });
    const initial = runtime.init(settings.shape, settings.seed, firstBatch, batchSize);
    return new SaeTrainer(settings.shape, runtime, session, provider, initial);
  }

  get stepCount(): number {
    return this.steps;
  }

  /**
   * BatchTopK's inference threshold θ (encode with pre·[pre > θ]); undefined for the other
   * architectures, and until some latent has fired. Checkpoints must save it beside the parameters.
   */
  get inferenceThreshold(): RunningThreshold | undefined {
    return this.runtime.threshold;
  }

  /**
   * One Adam step on a batch of row-major vectors [batchSize, d]. `dead` (1 per dead latent) feeds AuxK
   * where the architecture was built with it; ignored otherwise.
   */
  async step(
    batch: Float32Array,
    batchSize: number,
    lr: number,
    dead?: ArrayLike<number>,
  ): Promise<SaeStepResult> {
    const inputs = this.runtime.stepInputs(this.steps);
    const feeds: State = {
      ...this.state,
      x: new ort.Tensor('float32', batch, [batchSize, this.shape.d]),
      lr: new ort.Tensor('float32', Float32Array.of(lr), []),
      t: new ort.Tensor('float32', Float32Array.of(this.steps + 1), []),
    };
    for (const [name, value] of Object.entries(inputs)) {
      feeds[name] = new ort.Tensor('float32', Float32Array.of(value), []);
    }
    if (this.runtime.auxk) Object.assign(feeds, auxKFeeds(this.shape, dead));
    const out = await this.session.run(feeds);
    const next: State = {};
    for (const p of this.runtime.params) {
      next[p] = out[saeIo.updated(p)];
      next[saeIo.moment('m', p)] = out[saeIo.updatedMoment('m', p)];
      next[saeIo.moment('v', p)] = out[saeIo.updatedMoment('v', p)];
    }
    this.state = next;
    this.steps++;
    const extras: Record<string, number> = {};
    for (const [name, tensor] of Object.entries(out)) {
      if (!CORE_OUTPUTS.has(name) && tensor.dims.length === 0 && tensor.type === 'float32') {
        extras[name] = (tensor.data as Float32Array)[0];
      }
    }
    const result: SaeStepResult = {
      loss: (out.loss.data as Float32Array)[0],
      mse: (out.mse.data as Float32Array)[0],
      l0: (out.l0.data as Float32Array)[0],
      latentCounts: out.latent_counts.data as Float32Array,
      inputs,
      extras,
      ...('aux_loss' in extras ? { auxLoss: extras.aux_loss } : {}),
    };
    if (this.runtime.threshold && MIN_KEPT_OUTPUT in extras)
      this.runtime.threshold.observe(extras[MIN_KEPT_OUTPUT]);
    return result;
  }

  /** Current parameters (views of the live tensors: copy before the next step if they must be kept). */
  parameters(): SaeParameters {
    const view = (p: SaeParam) => this.state[p].data as Float32Array;
    const result: SaeParameters = {
      W_enc: view('W_enc'),
      b_enc: view('b_enc'),
      W_dec: view('W_dec'),
      b_dec: view('b_dec'),
    };
    if (this.runtime.params.includes('log_threshold')) result.log_threshold = view('log_threshold');
    return result;
  }

  /** Parameters, moments, step count and BatchTopK's θ, copied, for a checkpoint. */
  snapshot(): TrainerState {
    const scalars: Record<string, number> = {};
    const theta = this.runtime.threshold?.value;
    if (theta !== undefined) scalars[THRESHOLD_SCALAR] = theta;
    return { steps: this.steps, tensors: copyTensors(this.state), scalars };
  }

  /** Continues from a snapshot exactly where it was taken. */
  restore(saved: TrainerState): void {
    this.state = restoreTensors(this.state, saved.tensors);
    this.steps = saved.steps;
    this.runtime.threshold?.restore(saved.scalars[THRESHOLD_SCALAR]);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
