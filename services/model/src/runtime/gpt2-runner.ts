import path from 'node:path';
import { isAttentionHook, isNeuronHook, type Logger, parseHook, UserInputError } from '@loupe/common';
import ort from 'onnxruntime-node';
import {
  clampInputs,
  pastKeyInput,
  patchInputs,
  WINDOW_STATS,
  WINDOW_STATS_INPUT,
  windowStatOutput,
} from '../graph/gpt2-graph.js';
import { type GraphKind, type ModelManifest, readManifest } from '../graph/manifest.js';
import { Gpt2Tokenizer } from '../tokenizer/gpt2-tokenizer.js';
import { clampFeeds, emptyPastFeeds, steeringFeeds } from './control-feeds.js';
import { CachedDecoder, type DecodeRow, type Decoder, RecomputingDecoder } from './decoder.js';
import { hookRow } from './hook-rows.js';
import { patchFeeds } from './patch-feeds.js';
import type { HookPatch } from './patches.js';
import { type ExecutionProvider, type OpenedSession, openSession, type SessionSettings } from './sessions.js';
import type { WindowReduction } from './window-reduction.js';

/**
 * `strength · vector` added to blocks.{layer}.hook_resid_pre: one d_model vector for every position
 * (steering), or one per position, [tokens, d_model] row-major (splicing in an SAE reconstruction as
 * a difference, zero-ablating a position, patching).
 */
export interface ResidualAddition {
  layer: number;
  vector: Float32Array;
  strength: number;
}

/**
 * One SAE feature held at `value` inside blocks.{layer}.hook_resid_pre, after any addition there:
 * x += (value − act(x))·decoder with act(x) = pre where pre > threshold else 0 and pre = x·encoder + bias
 * (bias = b_enc − b_dec·encoder when the SAE centres its input). Everything else in x is kept.
 */
export interface FeatureClamp {
  layer: number;
  /** W_enc[:, f], d_model values */
  encoder: Float32Array;
  bias: number;
  /** 0 for a ReLU SAE; the JumpReLU threshold otherwise */
  threshold: number;
  value: number;
  /** W_dec[f], d_model values */
  decoder: Float32Array;
}

export interface ForwardRequest {
  ids: number[];
  hooks: string[];
  logits: boolean;
  steering?: ResidualAddition[];
  clamps?: FeatureClamp[];
  /**
   * Also each requested mlp.hook_post's per-neuron max, min, sum and positive count over this row's
   * tokens, reduced inside the forward pass by the trunk graph (no logits, no padding in the row).
   */
  windowStats?: boolean;
  /** Hook rewrites, checked by `toHookPatches` with mean patches resolved (`resolveMeanPatches`). */
  patches?: HookPatch[];
}

/**
 * Per hook its value row-major: [seq, width], [seq, head, d_head] for q/k/v/z, [head, seq, seq] for
 * attn_scores (masked = -Infinity) and pattern; logits [seq, vocab] when asked for. */
export interface ForwardResult {
  hooks: Map<string, Float32Array>;
  logits?: Float32Array;
  /**
   * Per mlp.hook_post, when asked for and computable: the trunk graph has the statistics (folders
   * converted before converter 1.1.0 lack them), no request in the batch wanted logits, and this row
   * is the batch's longest.
   */
  windowStats: Map<string, WindowReduction>;
}

/**
 * One converted GPT-2 on ONNX Runtime. A forward pass over several requests right-pads them into one
 * batch (the attention mask keeps each row identical to an unpadded run) and copies each row's
 * unpadded part back out. Sessions open lazily: logits use model.onnx, hook-only work uses trunk.onnx,
 * so capture never computes an unembedding it would throw away.
 */
export class Gpt2Runner {
  private readonly sessions = new Map<GraphKind, Promise<OpenedSession>>();
  private warnedNoWindowStats = false;
  private warnedNoCache = false;

  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly tokenizer: Gpt2Tokenizer,
    readonly settings: SessionSettings,
    private readonly log?: Logger,
  ) {}

  static async load(dir: string, settings: SessionSettings, log?: Logger): Promise<Gpt2Runner> {
    const manifest = await readManifest(dir);
    const tokenizer = await Gpt2Tokenizer.load(dir, manifest.tokenizer);
    return new Gpt2Runner(dir, manifest, tokenizer, settings, log);
  }

  get name(): string {
    return this.manifest.name;
  }

  /** The provider of whichever session opened first (both use the same settings). */
  async provider(): Promise<ExecutionProvider> {
    return (await this.session('trunk')).provider;
  }

  /** Validates a request before it joins a batch, so one bad request cannot fail its neighbours. */
  validate(request: ForwardRequest): void {
    const { vocabSize, nPositions, nLayer, dModel } = this.manifest.dims;
    if (request.ids.length === 0) throw new UserInputError('empty input: at least one token is needed');
    if (request.ids.length > nPositions) {
      throw new UserInputError(
        `input has ${request.ids.length} tokens; model ${this.name} accepts at most ${nPositions}`,
        'TOO_LONG',
      );
    }
    for (const id of request.ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new UserInputError(`token id ${id} is outside the vocabulary 0-${vocabSize - 1}`);
      }
    }
    for (const hook of request.hooks) parseHook(hook, nLayer);
    for (const add of request.steering ?? []) {
      if (!Number.isInteger(add.layer) || add.layer < 0 || add.layer >= nLayer) {
        throw new UserInputError(
          `steering layer ${add.layer} does not exist: model ${this.name} has layers 0-${nLayer - 1}`,
        );
      }
      if (add.vector.length !== dModel && add.vector.length !== request.ids.length * dModel) {
        throw new UserInputError(
          `steering vector for layer ${add.layer} has ${add.vector.length} values; d_model is ${dModel} (or ${request.ids.length} × ${dModel} for one per position)`,
        );
      }
      if (!Number.isFinite(add.strength) || add.vector.some((v) => !Number.isFinite(v))) {
        throw new UserInputError(`steering for layer ${add.layer} contains a NaN or infinite value`);
      }
    }
    for (const clamp of request.clamps ?? []) {
      if (!Number.isInteger(clamp.layer) || clamp.layer < 0 || clamp.layer >= nLayer) {
        throw new UserInputError(
          `feature clamp layer ${clamp.layer} does not exist: model ${this.name} has layers 0-${nLayer - 1}`,
        );
      }
      if (clamp.encoder.length !== dModel || clamp.decoder.length !== dModel) {
        throw new UserInputError(
          `feature clamp for layer ${clamp.layer}: encoder and decoder need d_model = ${dModel} values, got ${clamp.encoder.length} and ${clamp.decoder.length}`,
        );
      }
      const numbers = [clamp.bias, clamp.threshold, clamp.value, ...clamp.encoder, ...clamp.decoder];
      if (numbers.some((v) => !Number.isFinite(v))) {
        throw new UserInputError(`feature clamp for layer ${clamp.layer} contains a NaN or infinite value`);
      }
    }
    for (const patch of request.patches ?? []) {
      if (patch.values === 'mean' || patch.positions.some((p) => p >= request.ids.length))
        throw new Error(
          `patch of ${patch.hook} was not checked for this text (toHookPatches) or not resolved`,
        );
    }
  }

  async forward(requests: ForwardRequest[]): Promise<ForwardResult[]> {
    if (requests.length === 0) return [];
    for (const request of requests) this.validate(request);
    const needLogits = requests.some((r) => r.logits);
    const statHooks = [
      ...new Set(requests.flatMap((r) => (r.windowStats ? r.hooks.filter(isNeuronHook) : []))),
    ];
    // attention hooks and patches run on the research graphs (converter 1.3.0 on), everything else on the
    // graphs it always ran, which pay nothing for them
    const research = requests.some(
      (r) =>
        (r.patches ?? []).length > 0 ||
        r.hooks.some((h) => isAttentionHook(parseHook(h, this.manifest.dims.nLayer))),
    );
    if (research && !this.manifest.graphs.fullResearch) {
      throw new UserInputError(
        `model ${this.name} was converted before attention hooks and patching existed (converter ${this.manifest.converterVersion}); convert it again`,
      );
    }
    const kind: GraphKind = research
      ? needLogits
        ? 'fullResearch'
        : 'trunkResearch'
      : needLogits
        ? 'full'
        : 'trunk';
    const { session } = await this.session(kind);
    // trunk graphs converted before the statistics existed lack the switches: they run without them
    const hasStatSwitches = session.inputNames.includes(WINDOW_STATS_INPUT);
    const withStats =
      statHooks.length > 0 && !needLogits && !research && this.statsAvailable(hasStatSwitches);
    const clamping = requests.some((r) => (r.clamps ?? []).length > 0);
    // graphs converted before clamps existed lack the inputs: they still run everything else
    const hasClampInputs = session.inputNames.includes(clampInputs(0).encoder);
    if (clamping && !hasClampInputs) {
      throw new UserInputError(
        `model ${this.name} was converted before feature clamping existed; convert it again to clamp or ablate features`,
      );
    }
    const hasPatchInputs = session.inputNames.includes(patchInputs('hook_embed').index);
    const batch = requests.length;
    const seq = Math.max(...requests.map((r) => r.ids.length));
    const ids = new BigInt64Array(batch * seq);
    const mask = new BigInt64Array(batch * seq);
    requests.forEach((request, row) => {
      request.ids.forEach((id, t) => {
        ids[row * seq + t] = BigInt(id);
        mask[row * seq + t] = 1n;
      });
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [batch, seq]),
      attention_mask: new ort.Tensor('int64', mask, [batch, seq]),
      ...steeringFeeds(this.manifest.dims, requests, seq),
      ...(hasClampInputs ? clampFeeds(this.manifest.dims, requests) : {}),
      ...(hasPatchInputs ? patchFeeds(this.manifest.dims, requests) : {}),
      ...(session.inputNames.includes(pastKeyInput(0)) ? emptyPastFeeds(this.manifest.dims, batch) : {}),
      ...(hasStatSwitches
        ? { [WINDOW_STATS_INPUT]: this.windowStatSwitches(withStats ? statHooks : []) }
        : {}),
    };
    const hookNames = [...new Set(requests.flatMap((r) => r.hooks))];
    const statNames = withStats
      ? statHooks.flatMap((hook) => WINDOW_STATS.map((stat) => windowStatOutput(hook, stat)))
      : [];
    const fetches = needLogits ? [...hookNames, 'logits'] : [...hookNames, ...statNames];
    // every feed was built for this pass: hand them all to the session's thread
    const outputs: Record<string, ort.Tensor> =
      fetches.length === 0 ? {} : await session.run(feeds, fetches, { transfer: true });
    return requests.map((request, row) => {
      const n = request.ids.length;
      const take = (name: string) => {
        const keyed = name.endsWith('attn.hook_pattern') || name.endsWith('attn.hook_attn_scores');
        return hookRow(outputs[name], row, seq, n, keyed, name.endsWith('attn.hook_attn_scores'));
      };
      const statsOf = (hook: string): [string, WindowReduction] => {
        const stat = (name: (typeof WINDOW_STATS)[number]) => {
          const data = outputs[windowStatOutput(hook, name)].data as Float32Array;
          const width = data.length / batch;
          return data.subarray(row * width, (row + 1) * width);
        };
        return [hook, { max: stat('max'), min: stat('min'), sum: stat('sum'), nonZero: stat('nonzero') }];
      };
      const stats = withStats && request.windowStats && n === seq;
      return {
        hooks: new Map(request.hooks.map((hook) => [hook, take(hook)])),
        logits: request.logits ? take('logits') : undefined,
        windowStats: new Map(stats ? request.hooks.filter(isNeuronHook).map(statsOf) : []),
      };
    });
  }

  /**
   * A decoder for generating from these rows side by side: over model.onnx's key/value cache, or, for
   * folders converted before it existed (converter < 1.2.0), by recomputing every position each step.
   */
  async decoder(rows: DecodeRow[]): Promise<Decoder> {
    const { session } = await this.session('full');
    if (session.inputNames.includes(pastKeyInput(0)))
      return new CachedDecoder(session, this.manifest.dims, rows);
    if (!this.warnedNoCache) {
      this.warnedNoCache = true;
      this.log?.warn(
        { model: this.name, converterVersion: this.manifest.converterVersion },
        'model converted before the key/value cache existed: generation recomputes every position each step; convert the model again',
      );
    }
    return new RecomputingDecoder((requests) => this.forward(requests), rows, this.manifest.dims.vocabSize);
  }

  /** The trunk graph computes statistics only for the layers switched on here. */
  private windowStatSwitches(hooks: string[]): ort.Tensor {
    const { nLayer } = this.manifest.dims;
    const on = new Uint8Array(nLayer);
    for (const hook of hooks) {
      const ref = parseHook(hook, nLayer);
      if (ref.kind === 'block') on[ref.layer] = 1;
    }
    return new ort.Tensor('bool', on, [nLayer]);
  }

  private statsAvailable(hasStatSwitches: boolean): boolean {
    if (!hasStatSwitches && !this.warnedNoWindowStats) {
      this.warnedNoWindowStats = true;
      this.log?.warn(
        { model: this.name, converterVersion: this.manifest.converterVersion },
        'model converted before per-window neuron statistics existed: capture reduces windows in slower JavaScript; convert the model again',
      );
    }
    return hasStatSwitches;
  }

  private session(kind: GraphKind): Promise<OpenedSession> {
    let opened = this.sessions.get(kind);
    if (!opened) {
      const file = path.join(this.dir, this.manifest.graphs[kind] ?? '');
      opened = openSession(file, this.settings, this.log);
      opened.catch(() => this.sessions.delete(kind));
      this.sessions.set(kind, opened);
    }
    return opened;
  }

  async close(): Promise<void> {
    for (const opened of this.sessions.values()) {
      await (await opened.catch(() => null))?.session.release();
    }
    this.sessions.clear();
  }
}
