import { type BlockHookKind, blockHook, GraphBuilder, hookLayout, parseHook } from '@loupe/common';
import type { Gpt2Config } from '../config/gpt2-config.js';

/**
 * GPT-2 as an ONNX graph, written to be read beside Hugging Face's modeling_gpt2.py: embed, then per
 * block ln_1 → attention → add, ln_2 → MLP → add, then ln_f and the tied unembedding. Every
 * TransformerLens hook is a named graph output, so any subset can be fetched from one session.
 *
 * Inputs: input_ids and attention_mask [batch, seq] (int64; 1 = real token, 0 = padding), and one
 * `steer.{L}` per layer [batch | 1, 1 | seq, d_model], added to blocks.{L}.hook_resid_pre; callers feed
 * [1, 1, d_model] zeros for layers they do not steer. (An initializer-backed default would be neater,
 * but onnxruntime-node only passes feeds for true graph inputs and silently drops the rest.)
 *
 * Feature clamps (`clamp.{L}.*`, see `clampInputs`) then act on that steered residual: for F clamped SAE
 * features, pre = x·W + bias, act = pre where pre > threshold else 0, x += (value − act)·D, so each
 * feature reads `value` and the SAE's error term is untouched. Unused layers get F = 0, whose products
 * are empty and add exact zeros.
 *
 * Patches (`patch.{hook}.index` / `patch.{hook}.value`, see `patchInputs`) rewrite any hook's value
 * with a ScatterND right where it is computed, so everything later reads the patched value (as a
 * TransformerLens forward hook returning a new tensor). Unused hooks get K = 0 rows: an empty scatter.
 * Only the research graphs (`patching`) have them.
 */
export const OPSET = 20;
export const MASKED_SCORE = -3.4028234663852886e38; // float32 lowest, as Hugging Face uses: never -inf, so no NaN rows

export function steeringInput(layer: number): string {
  return `steer.${layer}`;
}

/**
 * Per-layer clamp inputs, each with a leading batch axis of 1 or batch (rows that clamp nothing carry
 * zero columns and rows, which add exactly 0): encoder [b, d, F], bias / threshold / value [b, 1, F],
 * decoder [b, F, d]. b_dec is folded into bias by the caller, so one layer can clamp features of
 * different SAEs.
 */
export function clampInputs(layer: number) {
  return {
    encoder: `clamp.${layer}.encoder`,
    bias: `clamp.${layer}.bias`,
    threshold: `clamp.${layer}.threshold`,
    value: `clamp.${layer}.value`,
    decoder: `clamp.${layer}.decoder`,
  };
}

/**
 * A hook's patch inputs: `index` [K, r] int64 names the rewritten slices of the batched value (r = 2:
 * row, position for [batch, seq, width] hooks; r = 3: row, position, head for q/k/v/z; r = 3: row,
 * head, query position for attn_scores and pattern) and `value` [K, slice width] holds them (d_model,
 * d_mlp or d_head; n_positions for attn_scores and pattern rows, of which the first `keys` are used).
 */
export function patchInputs(hook: string) {
  return { index: `patch.${hook}.index`, value: `patch.${hook}.value` };
}

/** Returns the graph's weight names; `weight` maps a checkpoint tensor name to an initializer. */
export type WeightSource = (name: string, dims: number[]) => string;

export interface Gpt2GraphOptions {
  /** false builds the trunk only (no logits): capture never pays for an unembedding it discards. */
  logits: boolean;
  /**
   * Adds, for every layer's mlp.hook_post, its per-row max, min, sum and count of positive values over
   * the sequence axis ([batch, width] outputs named by `windowStatOutput`), computed for the layers
   * switched on in the `window_stats` input ([n_layer] bool). A capture job's neuron records need them
   * for every window; reduced here, next to the activation just computed, they cost no second pass
   * over the forward's outputs.
   */
  windowStats?: boolean;
  /**
   * Adds a key/value cache, as Hugging Face's `use_cache`: per layer `past_key.{L}` and
   * `past_value.{L}` inputs [batch, head, past, d_head] and `present_key.{L}` / `present_value.{L}`
   * outputs [batch, head, past + seq, d_head]; attention_mask then covers past + seq. A plain forward
   * feeds empty pasts (past = 0), which concatenate to exactly the same keys and values as without a
   * cache; generation feeds the last step's presents and one new token.
   */
  kvCache?: boolean;
  /**
   * Declares the attention hooks (q, k, v, attn_scores, pattern, z) as outputs and takes patch inputs
   * at every hook: the research graphs (model-research.onnx, trunk-research.onnx). Without it the graph
   * is exactly what it was before they existed, so requests that use neither pay nothing for them.
   */
  patching?: boolean;
}

export function pastKeyInput(layer: number): string {
  return `past_key.${layer}`;
}
export function pastValueInput(layer: number): string {
  return `past_value.${layer}`;
}
export function presentKeyOutput(layer: number): string {
  return `present_key.${layer}`;
}
export function presentValueOutput(layer: number): string {
  return `present_value.${layer}`;
}

export const WINDOW_STATS_INPUT = 'window_stats';

export const WINDOW_STATS = ['max', 'min', 'sum', 'nonzero'] as const;
export type WindowStat = (typeof WINDOW_STATS)[number];

/** The trunk graph's output holding `stat` of `hook` per row (see `windowStats`). */
export function windowStatOutput(hook: string, stat: WindowStat): string {
  return `${hook}.window_${stat}`;
}

export function buildGpt2Graph(
  g: GraphBuilder,
  config: Gpt2Config,
  weight: WeightSource,
  options: Gpt2GraphOptions,
): GraphBuilder {
  const { dModel: d, nLayer, vocabSize } = config;
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const mask = g.input('attention_mask', 'int64', ['batch', options.kvCache ? 'total' : 'seq']);
  const hooks = new HookEmitter(g, config, options);

  const { allowed, positions } = attentionMasks(g, ids, mask, options.kvCache ?? false);
  const windowStatSwitches = options.windowStats ? g.input(WINDOW_STATS_INPUT, 'bool', [nLayer]) : undefined;
  const tokenEmbed = hooks.emit('hook_embed', (out) =>
    g.op('Gather', [weight('wte.weight', [vocabSize, d]), ids], { axis: 0 }, out),
  );
  const posEmbed = hooks.emit('hook_pos_embed', (out) =>
    g.op('Gather', [weight('wpe.weight', [config.nPositions, d]), positions], { axis: 0 }, out),
  );
  let residual = g.op('Add', [tokenEmbed, posEmbed]);

  for (let layer = 0; layer < nLayer; layer++) {
    const steer = g.input(steeringInput(layer), 'float32', ['steer_batch', 'steer_positions', d]);
    const steered = g.op('Add', [residual, steer]);
    const at = (kind: BlockHookKind) => blockHook(layer, kind);
    const residPre = hooks.emit(at('hook_resid_pre'), (out) => clampFeatures(g, layer, d, steered, out));
    const attnIn = layerNorm(g, config, weight, `h.${layer}.ln_1`, residPre);
    const attnOut = attention(g, config, weight, layer, attnIn, allowed, hooks, options.kvCache ?? false);
    const residMid = hooks.emit(at('hook_resid_mid'), (out) => g.op('Add', [residPre, attnOut], {}, out));
    const mlpOut = mlp(
      g,
      config,
      weight,
      layer,
      layerNorm(g, config, weight, `h.${layer}.ln_2`, residMid),
      hooks,
    );
    if (windowStatSwitches) addWindowStats(g, layer, config.dMlp, windowStatSwitches);
    residual = hooks.emit(at('hook_resid_post'), (out) => g.op('Add', [residMid, mlpOut], {}, out));
  }

  const normalized = hooks.emit('ln_final.hook_normalized', (out) =>
    layerNorm(g, config, weight, 'ln_f', residual, out),
  );
  if (options.logits) unembed(g, config, weight, normalized);
  return g;
}

/**
 * Names each hook where it is computed: as a graph output, and, with `patching`, behind the ScatterND
 * that applies its patch inputs (see `patchInputs`). Without `patching` the attention internals stay
 * anonymous intermediates, exactly the graph converted before they existed.
 */
class HookEmitter {
  private readonly patching: boolean;
  private readonly keys: string;

  constructor(
    private readonly g: GraphBuilder,
    private readonly config: Gpt2Config,
    options: Gpt2GraphOptions,
  ) {
    this.patching = options.patching ?? false;
    this.keys = options.kvCache ? 'total' : 'seq';
  }

  /** `produce(outputName)` computes the hook's value; returns the name later computations read. */
  emit(name: string, produce: (outputName: string | undefined) => string): string {
    const { config } = this;
    const ref = parseHook(name, config.nLayer);
    const layout = hookLayout(ref, config);
    if (!this.patching) return produce(layout.kind === 'position' ? this.output(name) : undefined);
    return this.scatter(name, produce(undefined), this.output(name));
  }

  /**
   * A hook computed as `finish(input)`, patched in `input` (same shape) before `finish`: scores are
   * patched before the causal and padding mask, so a patch never unmasks a key.
   */
  emitBefore(
    name: string,
    input: string,
    finish: (x: string, outputName: string | undefined) => string,
  ): string {
    if (!this.patching) return finish(input, undefined);
    return finish(this.scatter(name, input), this.output(name));
  }

  private scatter(name: string, x: string, outputName?: string): string {
    const { g, config } = this;
    const layout = hookLayout(parseHook(name, config.nLayer), config);
    const { index, value } = patchInputs(name);
    const rank = layout.kind === 'position' ? 2 : 3;
    const width =
      layout.kind === 'position' ? layout.width : layout.kind === 'head' ? layout.dHead : config.nPositions;
    g.input(index, 'int64', ['patches', rank]);
    g.input(value, 'float32', ['patches', width]);
    const updates = layout.kind === 'keyed' ? this.firstKeys(value, x) : value;
    return g.op('ScatterND', [x, index, updates], {}, outputName);
  }

  /** [K, n_positions] → [K, keys]: a patched pattern or scores row covers the keys actually present. */
  private firstKeys(value: string, scores: string): string {
    const { g } = this;
    const keys = g.op('Slice', [g.op('Shape', [scores]), g.constInt64([3]), g.constInt64([4])]);
    return g.op('Slice', [value, g.constInt64([0]), keys, g.constInt64([1])]);
  }

  private output(name: string): string {
    const { config } = this;
    const layout = hookLayout(parseHook(name, config.nLayer), config);
    const shape =
      layout.kind === 'position'
        ? ['batch', 'seq', layout.width]
        : layout.kind === 'head'
          ? ['batch', 'seq', layout.nHead, layout.dHead]
          : ['batch', layout.nHead, 'seq', this.keys];
    this.g.output(name, 'float32', shape);
    return name;
  }
}

/**
 * The layer's statistics behind an `If` on `window_stats[layer]`: ONNX Runtime computes every node of a
 * graph whatever is fetched, but only the branch an `If` takes, so a job on one layer does not pay for
 * the other layers' reductions. Off, each output is an empty [0, width] tensor.
 */
function addWindowStats(g: GraphBuilder, layer: number, width: number, switches: string): void {
  const hook = blockHook(layer, 'mlp.hook_post');
  const on = new GraphBuilder(g);
  const axes = on.constInt64([1]);
  const positive = on.op('Cast', [on.op('Greater', [hook, on.constFloat([0], [])])], { to: 1 });
  const sources: Record<WindowStat, [string, string]> = {
    max: ['ReduceMax', hook],
    min: ['ReduceMin', hook],
    sum: ['ReduceSum', hook],
    nonzero: ['ReduceSum', positive],
  };
  const off = new GraphBuilder(g);
  const empty = off.constFloat([], [0, width]);
  const outputs = WINDOW_STATS.map((stat) => {
    const [op, input] = sources[stat];
    on.output(on.op(op, [input, axes], { keepdims: 0 }), 'float32', ['rows', width]);
    off.output(off.op('Identity', [empty]), 'float32', ['rows', width]);
    return windowStatOutput(hook, stat);
  });
  const enabled = g.op('Squeeze', [g.op('Gather', [switches, g.constInt64([layer])], { axis: 0 })]);
  g.opNamed('If', [enabled], outputs, {
    then_branch: on.subgraph(`window_stats_${layer}`),
    else_branch: off.subgraph(`no_window_stats_${layer}`),
  });
  for (const name of outputs) g.output(name, 'float32', ['rows', width]);
}

/** x + (value − act(x))·decoder for the layer's clamped features (see the file comment). */
function clampFeatures(g: GraphBuilder, layer: number, d: number, x: string, outputName?: string): string {
  const names = clampInputs(layer);
  const encoder = g.input(names.encoder, 'float32', ['clamp_batch', d, 'clamp_features']);
  const bias = g.input(names.bias, 'float32', ['clamp_batch', 1, 'clamp_features']);
  const threshold = g.input(names.threshold, 'float32', ['clamp_batch', 1, 'clamp_features']);
  const value = g.input(names.value, 'float32', ['clamp_batch', 1, 'clamp_features']);
  const decoder = g.input(names.decoder, 'float32', ['clamp_batch', 'clamp_features', d]);
  const pre = g.op('Add', [g.op('MatMul', [x, encoder]), bias]);
  const act = g.op('Where', [g.op('Greater', [pre, threshold]), pre, g.constFloat([0], [])]);
  const delta = g.op('MatMul', [g.op('Sub', [value, act]), decoder]);
  return g.op('Add', [x, delta], {}, outputName);
}

/**
 * Position ids come from the mask (cumulative count of real tokens), so a text gets the same
 * positions whether it is padded on the right, on the left, or not at all. With a cache the mask covers
 * past + seq keys and the new tokens are its last seq columns.
 */
function attentionMasks(
  g: GraphBuilder,
  ids: string,
  mask: string,
  kvCache: boolean,
): { allowed: string; positions: string } {
  const counted = g.op('CumSum', [mask, g.constInt64([1], [])]);
  const allPositions = g.op('Max', [g.op('Sub', [counted, g.constInt64([1], [])]), g.constInt64([0], [])]);
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), g.constInt64([1], [])], { axis: 0 }); // scalar
  const totalLen = kvCache
    ? g.op('Gather', [g.op('Shape', [mask]), g.constInt64([1], [])], { axis: 0 })
    : seqLen;
  const pastLen = kvCache ? g.op('Sub', [totalLen, seqLen]) : undefined;
  // [batch, seq]: the new tokens' positions
  const positions = pastLen
    ? g.op('Slice', [
        allPositions,
        g.op('Unsqueeze', [pastLen, g.constInt64([0])]),
        g.op('Unsqueeze', [totalLen, g.constInt64([0])]),
        g.constInt64([1]),
      ])
    : allPositions;

  // causal [seq, total] (query i sees keys up to past + i) AND key mask [batch, 1, 1, total]
  // → [batch, 1, seq, total]
  const shape = g.op(
    'Concat',
    [g.op('Unsqueeze', [seqLen, g.constInt64([0])]), g.op('Unsqueeze', [totalLen, g.constInt64([0])])],
    { axis: 0 },
  );
  const ones = g.op('ConstantOfShape', [shape], { value: { dims: [1], dataType: 7, int64Data: [1] } });
  const lower = pastLen ? g.op('Trilu', [ones, pastLen], { upper: 0 }) : g.op('Trilu', [ones], { upper: 0 });
  const causal = g.op('Cast', [lower], { to: 9 });
  const keyMask = g.op('Cast', [g.op('Unsqueeze', [mask, g.constInt64([1, 2])])], { to: 9 });
  const allowed = g.op('And', [causal, keyMask]);
  return { allowed, positions };
}

function layerNorm(
  g: GraphBuilder,
  config: Gpt2Config,
  weight: WeightSource,
  prefix: string,
  x: string,
  outputName?: string,
): string {
  const d = config.dModel;
  return g.op(
    'LayerNormalization',
    [x, weight(`${prefix}.weight`, [d]), weight(`${prefix}.bias`, [d])],
    { axis: -1, epsilon: { float: config.layerNormEpsilon } },
    outputName,
  );
}

/** Conv1D as Hugging Face defines it: y = x·W + b with W stored [in, out]. */
function conv1d(
  g: GraphBuilder,
  weight: WeightSource,
  prefix: string,
  x: string,
  dims: [number, number],
  outputName?: string,
): string {
  const product = g.op('MatMul', [x, weight(`${prefix}.weight`, dims)]);
  return g.op('Add', [product, weight(`${prefix}.bias`, [dims[1]])], {}, outputName);
}

function attention(
  g: GraphBuilder,
  config: Gpt2Config,
  weight: WeightSource,
  layer: number,
  x: string,
  allowed: string,
  hooks: HookEmitter,
  kvCache: boolean,
): string {
  const { dModel: d, nHead } = config;
  const headDim = d / nHead;
  const at = (kind: BlockHookKind) => blockHook(layer, kind);
  const qkv = conv1d(g, weight, `h.${layer}.attn.c_attn`, x, [d, 3 * d]);
  const [q, k, v] = g.opMulti('Split', [qkv], 3, { axis: 2, num_outputs: 3 });
  // Reshape [batch, seq, d] → [batch, seq, head, d_head] (0 keeps batch and seq as they are): the
  // layout of TransformerLens' hook_q / hook_k / hook_v
  const heads = g.constInt64([0, 0, nHead, headDim]);
  const split = (t: string, kind: BlockHookKind) =>
    hooks.emit(at(kind), (out) => g.op('Reshape', [t, heads], {}, out));
  const transpose = (t: string, perm: number[]) => g.op('Transpose', [t], { perm });
  const [q4, k4, v4] = [split(q, 'attn.hook_q'), split(k, 'attn.hook_k'), split(v, 'attn.hook_v')];
  const query = g.op('Mul', [transpose(q4, [0, 2, 1, 3]), g.constFloat([1 / Math.sqrt(headDim)], [])]); // [b, h, seq, dh]
  let keyT: string; // [b, h, dh, keys]
  let value: string; // [b, h, keys, dh]
  if (kvCache) {
    const past = (name: string) => g.input(name, 'float32', ['batch', nHead, 'past', headDim]);
    const keys = g.op(
      'Concat',
      [past(pastKeyInput(layer)), transpose(k4, [0, 2, 1, 3])],
      { axis: 2 },
      presentKeyOutput(layer),
    );
    value = g.op(
      'Concat',
      [past(pastValueInput(layer)), transpose(v4, [0, 2, 1, 3])],
      { axis: 2 },
      presentValueOutput(layer),
    );
    for (const name of [presentKeyOutput(layer), presentValueOutput(layer)])
      g.output(name, 'float32', ['batch', nHead, 'total', headDim]);
    keyT = g.op('Transpose', [keys], { perm: [0, 1, 3, 2] });
  } else {
    keyT = transpose(k4, [0, 2, 3, 1]);
    value = transpose(v4, [0, 2, 1, 3]);
  }
  // [b, h, seq, keys]: a patched scores row is masked again, so a patch never unmasks a key
  const raw = g.op('MatMul', [query, keyT]);
  const scores = hooks.emitBefore(at('attn.hook_attn_scores'), raw, (x, out) =>
    g.op('Where', [allowed, x, g.constFloat([MASKED_SCORE], [])], {}, out),
  );
  const pattern = hooks.emit(at('attn.hook_pattern'), (out) => g.op('Softmax', [scores], { axis: -1 }, out));
  const context = g.op('MatMul', [pattern, value]); // [b, h, seq, dh]
  const z = hooks.emit(at('attn.hook_z'), (out) => transpose4(g, context, out)); // [b, seq, h, dh]
  const merged = g.op('Reshape', [z, g.constInt64([0, 0, d])]);
  return hooks.emit(at('hook_attn_out'), (out) =>
    conv1d(g, weight, `h.${layer}.attn.c_proj`, merged, [d, d], out),
  );
}

/** [b, h, seq, dh] → [b, seq, h, dh] */
function transpose4(g: GraphBuilder, t: string, outputName?: string): string {
  return g.op('Transpose', [t], { perm: [0, 2, 1, 3] }, outputName);
}

function mlp(
  g: GraphBuilder,
  config: Gpt2Config,
  weight: WeightSource,
  layer: number,
  x: string,
  hooks: HookEmitter,
): string {
  const { dModel: d, dMlp } = config;
  const pre = hooks.emit(blockHook(layer, 'mlp.hook_pre'), (out) =>
    conv1d(g, weight, `h.${layer}.mlp.c_fc`, x, [d, dMlp], out),
  );
  const post = hooks.emit(blockHook(layer, 'mlp.hook_post'), (out) =>
    g.op('Gelu', [pre], { approximate: 'tanh' }, out),
  );
  return hooks.emit(blockHook(layer, 'hook_mlp_out'), (out) =>
    conv1d(g, weight, `h.${layer}.mlp.c_proj`, post, [dMlp, d], out),
  );
}

/** logits = ln_f(x)·Wᵀ with W the (tied) [vocab, d] matrix, as a 2-D Gemm so W is used untransposed. */
function unembed(g: GraphBuilder, config: Gpt2Config, weight: WeightSource, normalized: string): void {
  const { dModel: d, vocabSize } = config;
  const flat = g.op('Reshape', [normalized, g.constInt64([-1, d])]);
  const logits2d = g.op('Gemm', [flat, weight('lm_head.weight', [vocabSize, d])], { transB: 1 });
  const batchSeq = g.op('Slice', [g.op('Shape', [normalized]), g.constInt64([0]), g.constInt64([2])]);
  const shape = g.op('Concat', [batchSeq, g.constInt64([vocabSize])], { axis: 0 });
  g.op('Reshape', [logits2d, shape], {}, 'logits');
  g.output('logits', 'float32', ['batch', 'seq', vocabSize]);
}
