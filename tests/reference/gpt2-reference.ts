import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsReader } from '@loupe/common';

/**
 * An independent GPT-2 forward pass in float64: plain loops written straight from Hugging Face's
 * GPT2LMHeadModel, sharing no code with the ONNX graph builder, so that the graph's hooks and logits
 * can be checked against it. Plain over fast: fine for tiny models and short inputs.
 */

export interface ReferenceConfig {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nInner: number;
  layerNormEpsilon: number;
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
}

export interface ReferenceLayer {
  ln1Weight: Float64Array;
  ln1Bias: Float64Array;
  /** Conv1D [d, 3d]: y = x·W + b, queries then keys then values. */
  attnWeight: Float64Array;
  attnBias: Float64Array;
  attnProjWeight: Float64Array;
  attnProjBias: Float64Array;
  ln2Weight: Float64Array;
  ln2Bias: Float64Array;
  fcWeight: Float64Array;
  fcBias: Float64Array;
  mlpProjWeight: Float64Array;
  mlpProjBias: Float64Array;
}

export interface ReferenceModel {
  config: ReferenceConfig;
  /** [V, d] row-major. */
  wte: Float64Array;
  /** [P, d] row-major. */
  wpe: Float64Array;
  layers: ReferenceLayer[];
  lnFinalWeight: Float64Array;
  lnFinalBias: Float64Array;
  /** [V, d]: lm_head.weight when the file has one, otherwise wte (tied). */
  unembed: Float64Array;
}

export interface ReferenceOutput {
  /**
   * TransformerLens hook name -> one array per token position ([head · d_head] for attn.hook_q|k|v|z),
   * except attn.hook_attn_scores and attn.hook_pattern: one [query · key] array per head, masked scores
   * -Infinity.
   */
  hooks: Map<string, Float64Array[]>;
  logits: Float64Array[];
}

export interface ReferenceOptions {
  /** Layer -> d_model vector added to blocks.{layer}.hook_resid_pre at every position. */
  steering?: Map<number, Float64Array>;
  /**
   * Rewrites blocks.{layer}.hook_resid_pre after the steering (one array per position), e.g. to clamp
   * an SAE feature there; what it returns is the hook's value and the rest of the stream.
   */
  editResidPre?: (layer: number, residPre: Float64Array[]) => Float64Array[];
  /**
   * TransformerLens' forward hooks: called at every hook with its value (the layout of
   * `ReferenceOutput.hooks`), and what it returns is the hook's value and what every later computation
   * reads. Edited attention scores are masked again before the softmax.
   */
  editHook?: (name: string, value: Float64Array[]) => Float64Array[];
}

const TANH_ACTIVATIONS = new Set(['gelu_new', 'gelu_pytorch_tanh']);

function readConfig(raw: Record<string, unknown>): ReferenceConfig {
  const int = (key: string): number => {
    const value = raw[key];
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new Error(`config.json: ${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  const activation = raw.activation_function ?? 'gelu_new';
  if (typeof activation !== 'string' || !TANH_ACTIVATIONS.has(activation)) {
    throw new Error(
      `config.json: activation_function ${JSON.stringify(activation)} is not supported (gelu_new)`,
    );
  }
  const nEmbd = int('n_embd');
  const nHead = int('n_head');
  if (nEmbd % nHead !== 0)
    throw new Error(`config.json: n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
  return {
    vocabSize: int('vocab_size'),
    nPositions: int('n_positions'),
    nEmbd,
    nLayer: int('n_layer'),
    nHead,
    nInner: raw.n_inner == null ? 4 * nEmbd : int('n_inner'),
    layerNormEpsilon: typeof raw.layer_norm_epsilon === 'number' ? raw.layer_norm_epsilon : 1e-5,
    scaleAttnWeights: raw.scale_attn_weights !== false,
    scaleAttnByInverseLayerIdx: raw.scale_attn_by_inverse_layer_idx === true,
  };
}

/** Reads an HF GPT-2 folder (config.json + model.safetensors), with or without the 'transformer.' prefix. */
export async function loadReferenceModel(dir: string): Promise<ReferenceModel> {
  const config = readConfig(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
  const reader = await SafetensorsReader.open(join(dir, 'model.safetensors'));
  try {
    const prefix = reader.tensors.has('transformer.wte.weight') ? 'transformer.' : '';
    const load = async (
      name: string,
      shape: number[],
      optional = false,
    ): Promise<Float64Array | undefined> => {
      const key = name === 'lm_head.weight' ? name : prefix + name;
      const info = reader.tensors.get(key);
      if (!info) {
        if (optional) return undefined;
        throw new Error(`model.safetensors: missing tensor "${key}"`);
      }
      if (info.shape.join(',') !== shape.join(',')) {
        throw new Error(`model.safetensors: "${key}" has shape [${info.shape}], expected [${shape}]`);
      }
      if (info.dtype === 'F64') {
        const raw = await reader.readRaw(key);
        return new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
      }
      return Float64Array.from(await reader.readFloat32(key));
    };
    const need = async (name: string, shape: number[]) => (await load(name, shape))!;
    const { vocabSize: V, nPositions: P, nEmbd: d, nInner: inner } = config;
    const layers: ReferenceLayer[] = [];
    for (let i = 0; i < config.nLayer; i++) {
      const h = `h.${i}`;
      layers.push({
        ln1Weight: await need(`${h}.ln_1.weight`, [d]),
        ln1Bias: await need(`${h}.ln_1.bias`, [d]),
        attnWeight: await need(`${h}.attn.c_attn.weight`, [d, 3 * d]),
        attnBias: await need(`${h}.attn.c_attn.bias`, [3 * d]),
        attnProjWeight: await need(`${h}.attn.c_proj.weight`, [d, d]),
        attnProjBias: await need(`${h}.attn.c_proj.bias`, [d]),
        ln2Weight: await need(`${h}.ln_2.weight`, [d]),
        ln2Bias: await need(`${h}.ln_2.bias`, [d]),
        fcWeight: await need(`${h}.mlp.c_fc.weight`, [d, inner]),
        fcBias: await need(`${h}.mlp.c_fc.bias`, [inner]),
        mlpProjWeight: await need(`${h}.mlp.c_proj.weight`, [inner, d]),
        mlpProjBias: await need(`${h}.mlp.c_proj.bias`, [d]),
      });
    }
    const wte = await need('wte.weight', [V, d]);
    return {
      config,
      wte,
      wpe: await need('wpe.weight', [P, d]),
      layers,
      lnFinalWeight: await need('ln_f.weight', [d]),
      lnFinalBias: await need('ln_f.bias', [d]),
      unembed: (await load('lm_head.weight', [V, d], true)) ?? wte,
    };
  } finally {
    await reader.close();
  }
}

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm computes it. */
function layerNorm(x: Float64Array, weight: Float64Array, bias: Float64Array, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (x[i] - mean) ** 2;
  variance /= n;
  const inv = 1 / Math.sqrt(variance + eps);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (x[i] - mean) * inv * weight[i] + bias[i];
  return out;
}

/** Conv1D: y = x·W + b with W stored [in, out]. */
function conv1d(x: Float64Array, weight: Float64Array, bias: Float64Array): Float64Array {
  const nOut = bias.length;
  const out = Float64Array.from(bias);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const row = i * nOut;
    for (let j = 0; j < nOut; j++) out[j] += xi * weight[row + j];
  }
  return out;
}

function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** Records a hook's value after `editHook` and `settle` (masking edited scores again). */
type HookPoint = (
  name: string,
  value: Float64Array[],
  settle?: (edited: Float64Array[]) => Float64Array[],
) => Float64Array[];

/**
 * Causal multi-head self-attention over every position, including the output projection; records
 * q, k, v, scores, pattern and z as `hook` returns them.
 */
function attention(
  normed: Float64Array[],
  layer: ReferenceLayer,
  config: ReferenceConfig,
  layerIndex: number,
  hook: HookPoint,
): Float64Array[] {
  const d = config.nEmbd;
  const H = config.nHead;
  const dHead = d / H;
  const T = normed.length;
  let scale = config.scaleAttnWeights ? 1 / Math.sqrt(dHead) : 1;
  if (config.scaleAttnByInverseLayerIdx) scale /= layerIndex + 1;
  const name = (kind: string) => `blocks.${layerIndex}.attn.${kind}`;
  const qkv = normed.map((x) => conv1d(x, layer.attnWeight, layer.attnBias));
  // [pos][head · d_head]: c_attn's output is queries, then keys, then values, heads contiguous
  const q = hook(
    name('hook_q'),
    qkv.map((row) => row.slice(0, d)),
  );
  const k = hook(
    name('hook_k'),
    qkv.map((row) => row.slice(d, 2 * d)),
  );
  const v = hook(
    name('hook_v'),
    qkv.map((row) => row.slice(2 * d)),
  );
  // [head][query · key]
  const masked = (h: Float64Array[]) =>
    h.map((m) => m.map((x, idx) => (idx % T > Math.floor(idx / T) ? Number.NEGATIVE_INFINITY : x)));
  const rawScores = Array.from({ length: H }, (_, h) => {
    const m = new Float64Array(T * T);
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        let dot = 0;
        for (let c = 0; c < dHead; c++) dot += q[i][h * dHead + c] * k[j][h * dHead + c];
        m[i * T + j] = dot * scale;
      }
    }
    return m;
  });
  const scores = hook(name('hook_attn_scores'), masked(rawScores), masked);
  const pattern = hook(
    name('hook_pattern'),
    scores.map((m) => {
      const p = new Float64Array(T * T);
      for (let i = 0; i < T; i++) {
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < T; j++) max = Math.max(max, m[i * T + j]);
        let total = 0;
        for (let j = 0; j < T; j++) total += p[i * T + j] = Math.exp(m[i * T + j] - max);
        for (let j = 0; j < T; j++) p[i * T + j] /= total;
      }
      return p;
    }),
  );
  const z = hook(
    name('hook_z'),
    Array.from({ length: T }, (_, i) => {
      const merged = new Float64Array(d);
      for (let h = 0; h < H; h++) {
        for (let j = 0; j < T; j++) {
          const p = pattern[h][i * T + j];
          for (let c = 0; c < dHead; c++) merged[h * dHead + c] += p * v[j][h * dHead + c];
        }
      }
      return merged;
    }),
  );
  return z.map((merged) => conv1d(merged, layer.attnProjWeight, layer.attnProjBias));
}

function checkInputs(
  model: ReferenceModel,
  ids: number[],
  steering: Map<number, Float64Array> | undefined,
): void {
  const { vocabSize, nPositions, nLayer, nEmbd } = model.config;
  if (ids.length === 0 || ids.length > nPositions) {
    throw new Error(`need 1 to ${nPositions} token ids, got ${ids.length}`);
  }
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`token id ${id} is outside the vocabulary (0-${vocabSize - 1})`);
    }
  }
  for (const [layer, vector] of steering ?? []) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer) {
      throw new Error(`steering layer ${layer} does not exist (0-${nLayer - 1})`);
    }
    if (vector.length !== nEmbd)
      throw new Error(`steering vector for layer ${layer} has ${vector.length} values, need ${nEmbd}`);
  }
}

export function referenceForward(
  model: ReferenceModel,
  ids: number[],
  opts: ReferenceOptions = {},
): ReferenceOutput {
  checkInputs(model, ids, opts.steering);
  const { config } = model;
  const d = config.nEmbd;
  const eps = config.layerNormEpsilon;
  const hooks = new Map<string, Float64Array[]>();
  const hook: HookPoint = (name, value, settle = (x) => x) => {
    const edited = settle(opts.editHook ? opts.editHook(name, value) : value);
    hooks.set(name, edited);
    return edited;
  };

  const embed = hook(
    'hook_embed',
    ids.map((id) => model.wte.slice(id * d, (id + 1) * d)),
  );
  const posEmbed = hook(
    'hook_pos_embed',
    ids.map((_, pos) => model.wpe.slice(pos * d, (pos + 1) * d)),
  );

  let resid = embed.map((e, pos) => add(e, posEmbed[pos]));
  model.layers.forEach((layer, L) => {
    const steer = opts.steering?.get(L);
    const steered = steer ? resid.map((x) => add(x, steer)) : resid;
    const residPre = hook(
      `blocks.${L}.hook_resid_pre`,
      opts.editResidPre ? opts.editResidPre(L, steered) : steered,
    );
    const attnOut = hook(
      `blocks.${L}.hook_attn_out`,
      attention(
        residPre.map((x) => layerNorm(x, layer.ln1Weight, layer.ln1Bias, eps)),
        layer,
        config,
        L,
        hook,
      ),
    );
    const residMid = hook(
      `blocks.${L}.hook_resid_mid`,
      residPre.map((x, pos) => add(x, attnOut[pos])),
    );
    const mlpPre = hook(
      `blocks.${L}.mlp.hook_pre`,
      residMid.map((x) =>
        conv1d(layerNorm(x, layer.ln2Weight, layer.ln2Bias, eps), layer.fcWeight, layer.fcBias),
      ),
    );
    const mlpPost = hook(
      `blocks.${L}.mlp.hook_post`,
      mlpPre.map((x) => x.map(geluNew)),
    );
    const mlpOut = hook(
      `blocks.${L}.hook_mlp_out`,
      mlpPost.map((x) => conv1d(x, layer.mlpProjWeight, layer.mlpProjBias)),
    );
    resid = hook(
      `blocks.${L}.hook_resid_post`,
      residMid.map((x, pos) => add(x, mlpOut[pos])),
    );
  });

  const normalized = hook(
    'ln_final.hook_normalized',
    resid.map((x) => layerNorm(x, model.lnFinalWeight, model.lnFinalBias, eps)),
  );
  const logits = normalized.map((x) => {
    const out = new Float64Array(config.vocabSize);
    for (let v = 0; v < config.vocabSize; v++) {
      let dot = 0;
      const row = v * d;
      for (let i = 0; i < d; i++) dot += x[i] * model.unembed[row + i];
      out[v] = dot;
    }
    return out;
  });
  return { hooks, logits };
}
