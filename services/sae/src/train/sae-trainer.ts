import type { Device } from '@loupe/common';
import { openSession, type RuntimeSession } from '@loupe/model';
import ort from 'onnxruntime-node';
import type { ArchitectureRuntime, SaeParameters } from '../architectures/architecture.js';
import { type ArchitectureSettings, architectureRuntime } from '../architectures/registry.js';
import type { AdamSettings } from './adam-ops.js';
import { MIN_KEPT_OUTPUT } from './batchtopk-graph.js';
import { type SaeParam, type SaeShape, saeIo, saeParamShape } from './dense-sae-ops.js';
import type { RunningThreshold } from './inference-threshold.js';
import { type BDecInit, decoderBias } from './init.js';
import { COMPLETE_OUTPUT, K_CAP_INPUT, MAX_ACTIVE_OUTPUT } from './relu-l1-graph.js';
import { nextKCap } from './sparse-kernel-choice.js';
import { AUXK_INPUTS } from './topk-graph.js';
import { copyTensors, restoreTensors, type TrainerState } from './trainer-state.js';

const THRESHOLD_SCALAR = 'inference_threshold';
/** the k_cap the next step's sparse kernel will use (0: dense); part of the state, so resume is exact */
const K_CAP_SCALAR = 'sparse_k_cap';

export interface SaeTrainerSettings {
  shape: SaeShape;
  /** which architecture (`kind`, a registry name) and its settings */
  architecture: ArchitectureSettings;
  seed: number;
  /** default mean */
  bDecInit?: BDecInit;
  device: Device;
  /** 0 lets ONNX Runtime pick; fix it for bit-identical CPU runs across machines */
  intraOpThreads: number;
  /** the service its sessions are counted under (see openSession) */
  owner?: string;
  adam?: AdamSettings;
}

export interface SaeStepResult {
  /** reconstruction plus the sparsity term at this step's coefficient */
  loss: number;
  /** reconstruction term alone, (1/B)·Σ_b ||x_b − x̂_b||² (the loss itself where there is no other term) */
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

const CORE_OUTPUTS = new Set(['loss', 'mse', 'l0', 'latent_counts']);

/**
 * Trains any registered architecture (see architectures/registry.ts) in one ONNX Runtime session.
 * Parameters and Adam moments live as tensors on our side: each step feeds them in and takes the step's
 * outputs as the next state, without copying.
 */
export class SaeTrainer {
  private state: State = {};
  private steps = 0;
  private kCap = 0;
  private sparseSession?: Promise<RuntimeSession>;

  private constructor(
    readonly shape: SaeShape,
    readonly runtime: ArchitectureRuntime,
    private readonly session: RuntimeSession,
    readonly provider: string,
    initial: SaeParameters,
    private readonly settings: SaeTrainerSettings,
  ) {
    for (const p of runtime.params) {
      const dims = saeParamShape(shape, p);
      const values = initial[p] as Float32Array;
      this.state[p] = new ort.Tensor('float32', values, dims);
      this.state[saeIo.moment('m', p)] = new ort.Tensor('float32', new Float32Array(values.length), dims);
      this.state[saeIo.moment('v', p)] = new ort.Tensor('float32', new Float32Array(values.length), dims);
    }
  }

  /** Builds the step graph, opens a session, and initialises parameters from the seed and a first batch. */
  static async create(
    settings: SaeTrainerSettings,
    firstBatch: Float32Array,
    batchSize: number,
  ): Promise<SaeTrainer> {
    const runtime = architectureRuntime(settings.architecture);
    const graph = runtime.stepGraph(settings.shape, settings.adam);
    const { session, provider } = await openSession(graph, {
      device: settings.device,
      intraOpThreads: settings.intraOpThreads,
      owner: settings.owner,
    });
    const initial = runtime.init(settings.shape, settings.seed, firstBatch, batchSize);
    if (settings.bDecInit === 'geometric-median')
      initial.b_dec = decoderBias('geometric-median', firstBatch, batchSize, settings.shape.d);
    return new SaeTrainer(settings.shape, runtime, session, provider, initial, settings);
  }

  /** The sparse kernel's session, opened on first use: a run that stays dense never builds it. */
  private sparse(): Promise<RuntimeSession> {
    const build = this.runtime.sparseStepGraph;
    if (!build) throw new Error(`${this.runtime.name} has no sparse kernel`);
    this.sparseSession ??= openSession(build(this.shape, this.settings.adam), {
      device: this.settings.device,
      intraOpThreads: this.settings.intraOpThreads,
      owner: this.settings.owner,
    }).then((opened) => opened.session);
    return this.sparseSession;
  }

  /**
   * Which kernel the next step runs: `sparse` with its k_cap, or `dense`. Chosen from the last step's
   * max_active; the first step (and a run just restored) follows what was saved.
   */
  get nextKernel(): { kind: 'dense' } | { kind: 'sparse'; kCap: number } {
    return this.kCap > 0 ? { kind: 'sparse', kCap: this.kCap } : { kind: 'dense' };
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
    let out: ort.InferenceSession.ReturnType | undefined;
    // Parameters and moments are lent to the session's thread, not copied: each run hands them back
    // (into `feeds`), so a sparse try that must be redone densely, or a failed step, still has them.
    const lend = Object.keys(this.state);
    const run = async (session: RuntimeSession, runFeeds: State) => {
      try {
        return await session.run(runFeeds, undefined, { lend });
      } finally {
        for (const name of lend) this.state[name] = runFeeds[name];
      }
    };
    if (this.kCap > 0) {
      const kCap = new ort.Tensor('int64', BigInt64Array.of(BigInt(this.kCap)), [1]);
      out = await run(await this.sparse(), Object.assign(feeds, { [K_CAP_INPUT]: kCap }));
      delete feeds[K_CAP_INPUT];
      // some vector had k_cap or more firing latents: the picks may have cut one off, so redo densely
      if ((out[COMPLETE_OUTPUT].data as Float32Array)[0] !== 1) out = undefined;
    }
    out ??= await run(this.session, feeds);
    if (this.runtime.sparseStepGraph) {
      this.kCap = nextKCap((out[MAX_ACTIVE_OUTPUT].data as Float32Array)[0], this.shape);
    }
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
    const loss = (out.loss.data as Float32Array)[0];
    const result: SaeStepResult = {
      loss,
      // a step without a separate sparsity or auxiliary term (TopK without AuxK) outputs the loss alone
      mse: out.mse ? (out.mse.data as Float32Array)[0] : loss,
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
    if (this.runtime.params.includes('threshold')) result.threshold = view('threshold');
    return result;
  }

  /** The `threshold` weights the trained SAE is saved with, where the architecture infers with one. */
  savedThreshold(): Float32Array | undefined {
    return this.runtime.savedThreshold?.(this.parameters(), this.shape.m);
  }

  /** Parameters, moments, step count and BatchTopK's θ, copied, for a checkpoint. */
  snapshot(): TrainerState {
    const scalars: Record<string, number> = {};
    const theta = this.runtime.threshold?.value;
    if (theta !== undefined) scalars[THRESHOLD_SCALAR] = theta;
    if (this.runtime.sparseStepGraph) scalars[K_CAP_SCALAR] = this.kCap;
    return { steps: this.steps, tensors: copyTensors(this.state), scalars };
  }

  /** Continues from a snapshot exactly where it was taken. */
  restore(saved: TrainerState): void {
    this.state = restoreTensors(this.state, saved.tensors);
    this.steps = saved.steps;
    this.runtime.threshold?.restore(saved.scalars[THRESHOLD_SCALAR]);
    this.kCap = saved.scalars[K_CAP_SCALAR] ?? 0;
  }

  async release(): Promise<void> {
    await this.session.release();
    if (this.sparseSession) await (await this.sparseSession).release();
  }
}
