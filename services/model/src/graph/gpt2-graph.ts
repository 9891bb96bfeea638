import { blockHook, GraphBuilder, hookWidth, parseHook } from '@loupe/common';
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
 */
export const OPSET = 20;
const MASKED_SCORE = -3.4028234663852886e38; // float32 lowest, as Hugging Face uses: never -inf, so no NaN rows

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
  const declareHook = (name: string) => {
    g.output(name, 'float32', ['batch', 'seq', hookWidth(parseHook(name, nLayer), config)]);
    return name;
  };

  const { allowed, positions } = attentionMasks(g, ids, mask, options.kvCache ?? false);
  const windowStatSwitches = options.windowStats ? g.input(WINDOW_STATS_INPUT, 'bool', [nLayer]) : undefined;
  const tokenEmbed = g.op(
    'Gather',
    [weight('wte.weight', [vocabSize, d]), ids],
    { axis: 0 },
    declareHook('hook_embed'),
  );
  const posEmbed = g.op(
    'Gather',
    [weight('wpe.weight', [config.nPositions, d]), positions],
    { axis: 0 },
    declareHook('hook_pos_embed'),
  );
  let residual = g.op('Add', [tokenEmbed, posEmbed]);

  for (let layer = 0; layer < nLayer; layer++) {
    const steer = g.input(steeringInput(layer), 'float32', ['steer_batch', 'steer_positions', d]);
    const steered = g.op('Add', [residual, steer]);
    const residPre = clampFeatures(g, layer, d, steered, declareHook(blockHook(layer, 'hook_resid_pre')));
    const attnIn = layerNorm(g, config, weight, `h.${layer}.ln_1`, residPre);
    const attnOut = attention(
      g,
      config,
      weight,
      layer,
      attnIn,
      allowed,
      declareHook,
      options.kvCache ?? false,
    );
    const residMid = g.op('Add', [residPre, attnOut], {}, declareHook(blockHook(layer, 'hook_resid_mid')));
    const mlpOut = mlp(
      g,
      config,
      weight,
      layer,
      layerNorm(g, config, weight, `h.${layer}.ln_2`, residMid),
      declareHook,
    );
    if (windowStatSwitches) addWindowStats(g, layer, config.dMlp, windowStatSwitches);
    residual = g.op('Add', [residMid, mlpOut], {}, declareHook(blockHook(layer, 'hook_resid_post')));
  }

  const normalized = layerNorm(g, config, weight, 'ln_f', residual, declareHook('ln_final.hook_normalized'));
  if (options.logits) unembed(g, config, weight, normalized);
  return g;
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
function clampFeatures(g: GraphBuilder, layer: number, d: number, x: string, outputName: string): string {
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
  hook: (name: string) => string,
  kvCache: boolean,
): string {
  const { dModel: d, nHead } = config;
  const headDim = d / nHead;
  const qkv = conv1d(g, weight, `h.${layer}.attn.c_attn`, x, [d, 3 * d]);
  const [q, k, v] = g.opMulti('Split', [qkv], 3, { axis: 2, num_outputs: 3 });
  // Reshape [batch, seq, d] → [batch, seq, head, d_head] (0 keeps batch and seq as they are)
  const heads = g.constInt64([0, 0, nHead, headDim]);
  const split = (t: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, heads])], { perm });
  const query = g.op('Mul', [split(q, [0, 2, 1, 3]), g.constFloat([1 / Math.sqrt(headDim)], [])]); // [b, h, seq, dh]
  let keyT: string; // [b, h, dh, keys]
  let value: string; // [b, h, keys, dh]
  if (kvCache) {
    const past = (name: string) => g.input(name, 'float32', ['batch', nHead, 'past', headDim]);
    const keys = g.op(
      'Concat',
      [past(pastKeyInput(layer)), split(k, [0, 2, 1, 3])],
      { axis: 2 },
      presentKeyOutput(layer),
    );
    value = g.op(
      'Concat',
      [past(pastValueInput(layer)), split(v, [0, 2, 1, 3])],
      { axis: 2 },
      presentValueOutput(layer),
    );
    for (const name of [presentKeyOutput(layer), presentValueOutput(layer)])
      g.output(name, 'float32', ['batch', nHead, 'total', headDim]);
    keyT = g.op('Transpose', [keys], { perm: [0, 1, 3, 2] });
  } else {
    keyT = split(k, [0, 2, 3, 1]);
    value = split(v, [0, 2, 1, 3]);
  }
  const scores = g.op('Where', [allowed, g.op('MatMul', [query, keyT]), g.constFloat([MASKED_SCORE], [])]);
  const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), value]);
  const merged = g.op('Reshape', [
    g.op('Transpose', [context], { perm: [0, 2, 1, 3] }),
    g.constInt64([0, 0, d]),
  ]);
  return conv1d(g, weight, `h.${layer}.attn.c_proj`, merged, [d, d], hook(blockHook(layer, 'hook_attn_out')));
}

function mlp(
  g: GraphBuilder,
  config: Gpt2Config,
  weight: WeightSource,
  layer: number,
  x: string,
  hook: (name: string) => string,
): string {
  const { dModel: d, dMlp } = config;
  const pre = conv1d(g, weight, `h.${layer}.mlp.c_fc`, x, [d, dMlp], hook(blockHook(layer, 'mlp.hook_pre')));
  const post = g.op('Gelu', [pre], { approximate: 'tanh' }, hook(blockHook(layer, 'mlp.hook_post')));
  return conv1d(g, weight, `h.${layer}.mlp.c_proj`, post, [dMlp, d], hook(blockHook(layer, 'hook_mlp_out')));
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
