import fs from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '@loupe/common';

/**
 * SAELens folders as releases on the hub have written them (v6, and the flat pre-6 cfg.json of
 * Joseph Bloom's GPT-2 small SAEs, of OpenAI's TopK SAEs converted by SAELens 4-5, of Gemma Scope's
 * JumpReLU config), with weights in hand-laid safetensors bytes, and an independent float64 reading
 * of what SAELens computes with each: written from SAELens' own code (sae.py of 5.x and 6.x,
 * pretrained_sae_loaders.py), not from Loupe's reader.
 */

export const VARIANT_D_IN = 8;
export const VARIANT_D_SAE = 16;
/** the layer and hooks every variant names; a model to check them against needs ≥ 2 layers */
export const VARIANT_LAYER = 1;

type Json = Record<string, unknown>;
type Dtype = 'F32' | 'BF16';

export interface RawTensor {
  name: string;
  shape: number[];
  values: Float32Array;
  dtype?: Dtype;
}

export interface SaeLensVariant {
  /** folder name, and what the variant exercises */
  name: string;
  cfg: Json;
  tensors: RawTensor[];
  /** a sparsity file beside the weights: its file name and the d_sae log10 frequencies */
  sparsity?: { file: string; values: Float32Array };
  /** for expected_average_only_in: the dataset norm scaling factor SAELens keeps outside the folder */
  normScalingFactor?: number;
  /** center_writing_weights as a release's SAELens config_overrides say it, outside the folder */
  centerWritingWeights?: boolean;
}

/** A variant that must be refused, and what the refusal must name (the field and its value). */
export interface RefusedVariant {
  name: string;
  cfg: Json;
  tensors: RawTensor[];
  message: RegExp;
}

/** bf16 keeps the top 16 bits of a float32: values rounded to it are exact in both. */
function toBf16Exact(values: Float32Array): Float32Array {
  const bits = new Uint32Array(values.buffer.slice(0));
  for (let i = 0; i < bits.length; i++) bits[i] &= 0xffff0000;
  return new Float32Array(bits.buffer);
}

/** Widths of a variant's SAE: small for the unit tests, a model's d_model for end-to-end ones. */
export interface VariantDims {
  dIn: number;
  dSae: number;
}

const DEFAULT_DIMS: VariantDims = { dIn: VARIANT_D_IN, dSae: VARIANT_D_SAE };

function baseTensors(
  seed: number,
  dims: VariantDims,
  options: { threshold?: boolean; bf16?: boolean } = {},
): RawTensor[] {
  const rng = Rng.derive(seed, 'test/saelens-variant');
  const d = dims.dIn;
  const m = dims.dSae;
  // entries of W_enc ~ N(0, 0.5²·8/d) keep pre-activations O(1) whatever d_in is
  const encStd = 0.5 * Math.sqrt(VARIANT_D_IN / d);
  const dtype: Dtype = options.bf16 ? 'BF16' : 'F32';
  const fix = (v: Float32Array) => (options.bf16 ? toBf16Exact(v) : v);
  const tensors: RawTensor[] = [
    { name: 'W_enc', shape: [d, m], values: fix(rng.normalFloat32(d * m, 0, encStd)), dtype },
    { name: 'b_enc', shape: [m], values: fix(rng.normalFloat32(m, 0, 0.2)), dtype },
    { name: 'W_dec', shape: [m, d], values: fix(rng.normalFloat32(m * d, 0, 0.5)), dtype },
    { name: 'b_dec', shape: [d], values: fix(rng.normalFloat32(d, 0, 0.3)), dtype },
  ];
  if (options.threshold)
    tensors.push({ name: 'threshold', shape: [m], values: fix(rng.normalFloat32(m, 0.3, 0.1)), dtype });
  return tensors;
}

function perLatent(seed: number, dSae: number, mean: number, std: number): Float32Array {
  return Rng.derive(seed, 'test/saelens-variant-latent').normalFloat32(dSae, mean, std);
}

const HOOK = `blocks.${VARIANT_LAYER}.hook_resid_pre`;
const HOOK_POST = `blocks.${VARIANT_LAYER}.hook_resid_post`;

/** A pre-6 cfg.json in the flat layout of Joseph Bloom's GPT-2 small residual SAEs. */
function bloomCfg(dims: VariantDims, extra: Json = {}): Json {
  return {
    model_name: 'gpt2-small',
    hook_point: HOOK,
    hook_point_layer: VARIANT_LAYER,
    hook_point_head_index: null,
    dataset_path: 'Skylion007/openwebtext',
    is_dataset_tokenized: false,
    context_size: 128,
    d_in: dims.dIn,
    d_sae: dims.dSae,
    expansion_factor: dims.dSae / dims.dIn,
    b_dec_init_method: 'geometric_median',
    l1_coefficient: 8e-5,
    lr: 4e-4,
    device: 'mps',
    seed: 42,
    dtype: 'torch.float32',
    ...extra,
  };
}

/** Every layout that imports, each with what makes it differ. */
export function saeLensVariants(dims: VariantDims = DEFAULT_DIMS): SaeLensVariant[] {
  return [
    {
      name: 'v6-standard',
      cfg: {
        architecture: 'standard',
        d_in: dims.dIn,
        d_sae: dims.dSae,
        dtype: 'float32',
        device: 'cpu',
        apply_b_dec_to_input: true,
        normalize_activations: 'none',
        reshape_activations: 'none',
        metadata: {
          sae_lens_version: '6.5.1',
          model_name: 'gpt2',
          hook_name: HOOK,
          hook_layer: VARIANT_LAYER,
          hook_head_index: null,
        },
      },
      tensors: baseTensors(1, dims),
    },
    {
      name: 'bloom-pre6',
      cfg: bloomCfg(dims),
      tensors: baseTensors(2, dims),
      sparsity: { file: 'sparsity.safetensors', values: perLatent(2, dims.dSae, -3, 1) },
    },
    {
      // OpenAI's TopK SAEs as SAELens 4-5 converted them: architecture standard, activation topk
      name: 'openai-topk-pre6',
      cfg: {
        architecture: 'standard',
        d_in: dims.dIn,
        d_sae: dims.dSae,
        activation_fn_str: 'topk',
        activation_fn_kwargs: { k: 5 },
        apply_b_dec_to_input: true,
        finetuning_scaling_factor: false,
        normalize_activations: 'none',
        hook_name: HOOK_POST,
        hook_layer: VARIANT_LAYER,
        hook_head_index: null,
        dtype: 'float32',
        sae_lens_training_version: null,
      },
      tensors: baseTensors(3, dims),
      sparsity: { file: 'feature_sparsity.safetensors', values: perLatent(3, dims.dSae, -2, 1) },
    },
    {
      // OpenAI's TopK SAEs normalise each input as their code does: (x − mean) / (std + 1e-5)
      name: 'openai-topk-layer-norm',
      cfg: {
        architecture: 'topk',
        k: 4,
        d_in: dims.dIn,
        d_sae: dims.dSae,
        dtype: 'float32',
        apply_b_dec_to_input: true,
        normalize_activations: 'layer_norm',
        metadata: { sae_lens_version: '6.3.0', model_name: 'gpt2-small', hook_name: HOOK_POST },
      },
      tensors: baseTensors(12, dims),
    },
    {
      name: 'v6-topk',
      cfg: {
        architecture: 'topk',
        k: 3,
        d_in: dims.dIn,
        d_sae: dims.dSae,
        apply_b_dec_to_input: false,
        normalize_activations: 'none',
        metadata: {
          sae_lens_version: '6.0.0',
          model_name: 'gpt2',
          hook_name: HOOK,
          model_from_pretrained_kwargs: { center_writing_weights: false },
        },
      },
      tensors: baseTensors(4, dims),
    },
    {
      // SAELens 5: decode is (acts · finetuning_scaling_factor) @ W_dec + b_dec
      name: 'finetuning-scaled-pre6',
      cfg: bloomCfg(dims, {
        activation_fn_str: 'relu',
        finetuning_scaling_factor: true,
        apply_b_dec_to_input: false,
      }),
      tensors: [
        ...baseTensors(5, dims),
        { name: 'scaling_factor', shape: [dims.dSae], values: perLatent(5, dims.dSae, 1, 0.3) },
      ],
    },
    {
      // a scaling factor of all ones is no scaling (SAELens deletes it), whatever the flag says
      name: 'unit-scaling-pre6',
      cfg: bloomCfg(dims, { finetuning_scaling_factor: false }),
      tensors: [
        ...baseTensors(6, dims),
        { name: 'scaling_factor', shape: [dims.dSae], values: new Float32Array(dims.dSae).fill(1) },
      ],
    },
    {
      // trained by SAELens < 3.19.2 on HookedTransformer.from_pretrained (centred writing weights), as
      // its cfg says; later SAELens writes model_from_pretrained_kwargs into every cfg
      name: 'centred-writes-pre6',
      cfg: bloomCfg(dims, { model_from_pretrained_kwargs: { center_writing_weights: true } }),
      tensors: baseTensors(13, dims),
    },
    {
      // Bloom's release: its cfg.json is silent, SAELens' pretrained_saes.yaml says centred
      name: 'centred-by-release-pre6',
      cfg: bloomCfg(dims, { hook_point: HOOK_POST, apply_b_dec_to_input: true }),
      tensors: baseTensors(14, dims),
      centerWritingWeights: true,
    },
    {
      // centring and the dataset norm factor together, on a jumprelu SAE at an MLP's output
      name: 'centred-average-jumprelu',
      cfg: {
        architecture: 'jumprelu',
        d_in: dims.dIn,
        d_sae: dims.dSae,
        apply_b_dec_to_input: true,
        normalize_activations: 'expected_average_only_in',
        metadata: {
          sae_lens_version: '6.1.0',
          model_name: 'gpt2',
          hook_name: `blocks.${VARIANT_LAYER}.hook_mlp_out`,
          model_from_pretrained_kwargs: { center_writing_weights: true },
        },
      },
      tensors: baseTensors(15, dims, { threshold: true }),
      normScalingFactor: 1.75,
    },
    {
      name: 'expected-average-pre6',
      cfg: bloomCfg(dims, { normalize_activations: 'expected_average_only_in' }),
      tensors: baseTensors(7, dims),
      normScalingFactor: 2.5,
    },
    {
      // the boolean of SAELens ≤ 3: true meant expected_average_only_in
      name: 'normalize-true-pre6',
      cfg: bloomCfg(dims, { normalize_activations: true, model_name: undefined }),
      tensors: baseTensors(8, dims),
      normScalingFactor: 0.75,
    },
    {
      name: 'constant-norm-rescale',
      cfg: bloomCfg(dims, { normalize_activations: 'constant_norm_rescale', apply_b_dec_to_input: false }),
      tensors: baseTensors(9, dims),
    },
    {
      // Gemma Scope's config: jumprelu, no b_dec on the way in, normalize_activations null; bf16 weights
      name: 'jumprelu-gemmascope-like',
      cfg: {
        architecture: 'jumprelu',
        d_in: dims.dIn,
        d_sae: dims.dSae,
        dtype: 'bfloat16',
        model_name: 'gpt2',
        hook_name: HOOK_POST,
        hook_layer: VARIANT_LAYER,
        hook_head_index: null,
        activation_fn_str: 'relu',
        finetuning_scaling_factor: false,
        apply_b_dec_to_input: false,
        normalize_activations: null,
      },
      tensors: baseTensors(10, dims, { threshold: true, bf16: true }),
    },
    {
      // neither d_in, d_sae, model_name nor dtype: the shapes come from W_enc
      name: 'bare-pre6',
      cfg: { hook_point: HOOK, hook_point_layer: VARIANT_LAYER },
      tensors: baseTensors(11, dims),
    },
  ].map((v) => ({ ...v, cfg: dropUndefined(v.cfg) }));
}

/** Layouts that must be refused, each with the field and value its message must name. */
export function refusedSaeLensVariants(dims: VariantDims = DEFAULT_DIMS): RefusedVariant[] {
  const plain = baseTensors(20, dims);
  return [
    {
      name: 'batch-norm',
      cfg: bloomCfg(dims, { normalize_activations: 'batch_norm' }),
      tensors: plain,
      message: /normalize_activations "batch_norm" is not supported/,
    },
    {
      name: 'tanh-relu',
      cfg: bloomCfg(dims, { activation_fn_str: 'tanh-relu' }),
      tensors: plain,
      message: /activation_fn_str "tanh-relu" is not supported/,
    },
    {
      name: 'one-head',
      cfg: bloomCfg(dims, { hook_point_head_index: 3 }),
      tensors: plain,
      message: /hook_point_head_index 3 is not supported/,
    },
    {
      name: 'gated',
      cfg: bloomCfg(dims, { architecture: 'gated' }),
      tensors: plain,
      message: /architecture "gated" is not supported/,
    },
    {
      name: 'layer-mismatch',
      cfg: bloomCfg(dims, { hook_point_layer: 0 }),
      tensors: plain,
      message: /hook_point_layer 0 disagrees with hook "blocks\.1\.hook_resid_pre"/,
    },
    {
      name: 'int-dtype',
      cfg: bloomCfg(dims, { dtype: 'int8' }),
      tensors: plain,
      message: /dtype "int8" is not supported/,
    },
    {
      name: 'b-dec-string',
      cfg: bloomCfg(dims, { apply_b_dec_to_input: 'yes' }),
      tensors: plain,
      message: /apply_b_dec_to_input must be true or false, got "yes"/,
    },
    {
      name: 'topk-no-k',
      cfg: bloomCfg(dims, { activation_fn_str: 'topk' }),
      tensors: plain,
      message: /topk needs "k"/,
    },
    {
      name: 'average-without-factor',
      cfg: bloomCfg(dims, { normalize_activations: 'expected_average_only_in' }),
      tensors: plain,
      message: /normalize_activations "expected_average_only_in" needs the dataset's norm scaling factor/,
    },
    {
      name: 'centred-rescaled',
      cfg: bloomCfg(dims, {
        normalize_activations: 'constant_norm_rescale',
        model_from_pretrained_kwargs: { center_writing_weights: true },
      }),
      tensors: plain,
      message:
        /normalize_activations "constant_norm_rescale" with center_writing_weights true is not supported/,
    },
    {
      name: 'centre-string',
      cfg: bloomCfg(dims, { model_from_pretrained_kwargs: { center_writing_weights: 'yes' } }),
      tensors: plain,
      message: /model_from_pretrained_kwargs\.center_writing_weights must be true or false, got "yes"/,
    },
    {
      name: 'scaling-flag-off',
      cfg: bloomCfg(dims, { finetuning_scaling_factor: false }),
      tensors: [
        ...plain,
        { name: 'scaling_factor', shape: [dims.dSae], values: perLatent(21, dims.dSae, 1, 0.3) },
      ],
      message: /tensor "scaling_factor" is not all ones but cfg\.json says finetuning_scaling_factor false/,
    },
    {
      name: 'scaling-flag-no-tensor',
      cfg: bloomCfg(dims, { finetuning_scaling_factor: true }),
      tensors: plain,
      message: /finetuning_scaling_factor true, but there is no tensor/,
    },
  ];
}

function dropUndefined(cfg: Json): Json {
  return Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined));
}

/**
 * A safetensors file laid out byte by byte as the format specifies (8-byte little-endian header
 * length, JSON header, little-endian data), independent of Loupe's writer.
 */
export function safetensorsBytes(tensors: RawTensor[]): Buffer {
  const header: Json = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    let data: Buffer;
    if (dtype === 'F32') {
      data = Buffer.alloc(t.values.length * 4);
      for (let i = 0; i < t.values.length; i++) data.writeFloatLE(t.values[i], i * 4);
    } else {
      data = Buffer.alloc(t.values.length * 2);
      const bits = new Uint32Array(Float32Array.from(t.values).buffer);
      for (let i = 0; i < bits.length; i++) data.writeUInt16LE(bits[i] >>> 16, i * 2);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
    chunks.push(data);
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...chunks]);
}

/** Writes a variant's folder (cfg.json, sae_weights.safetensors, its sparsity file); returns the files. */
export async function writeSaeLensVariant(
  dir: string,
  variant: Pick<SaeLensVariant, 'cfg' | 'tensors' | 'sparsity'>,
): Promise<Record<string, string>> {
  await fs.mkdir(dir, { recursive: true });
  const files: Record<string, string> = {
    'cfg.json': path.join(dir, 'cfg.json'),
    'sae_weights.safetensors': path.join(dir, 'sae_weights.safetensors'),
  };
  await fs.writeFile(files['cfg.json'], JSON.stringify(variant.cfg, null, 2));
  await fs.writeFile(files['sae_weights.safetensors'], safetensorsBytes(variant.tensors));
  if (variant.sparsity) {
    files[variant.sparsity.file] = path.join(dir, variant.sparsity.file);
    await fs.writeFile(
      files[variant.sparsity.file],
      safetensorsBytes([
        { name: 'sparsity', shape: [variant.sparsity.values.length], values: variant.sparsity.values },
      ]),
    );
  }
  return files;
}

export interface ReferenceForward {
  /** latent activations [rows, d_sae] */
  acts: Float64Array;
  /** reconstructions [rows, d_in] */
  recon: Float64Array;
  /**
   * The smallest distance of any decision to flipping (a pre-activation from 0 or its threshold, the
   * k-th from the (k+1)-th largest): a test must keep it well above its tolerance.
   */
  margin: number;
}

/**
 * SAELens' encode and decode of a variant, in float64, straight from the raw cfg.json and tensors:
 *   x' = norm_in(x); pre = (x' − b_dec·[apply_b_dec_to_input]) @ W_enc + b_enc; acts = act(pre);
 *   x̂ = norm_out((acts · s) @ W_dec + b_dec)
 * with act ReLU (standard), ReLU of the k largest (topk, k in cfg or activation_fn_kwargs), or
 * ReLU(pre)·[pre > threshold] (jumprelu); s the finetuning scaling factor when enabled, else 1;
 * norm_in/out x·√d_in/‖x‖ and its inverse (constant_norm_rescale), (x − μ)/(σ + 1e-5) and x̂·σ + μ
 * with σ the unbiased standard deviation (layer_norm), or x·f and x̂/f with the dataset's norm
 * scaling factor f (expected_average_only_in, true), else nothing; and x − mean(x) first when the SAE
 * read a TransformerLens model with centred writing weights at a residual-stream hook (the
 * reconstruction is then of that centred x).
 */
export function referenceSaeLensForward(
  variant: SaeLensVariant,
  x: Float32Array,
  rows: number,
): ReferenceForward {
  const cfg = variant.cfg;
  const tensor = (name: string) => variant.tensors.find((t) => t.name === name)?.values;
  const W_enc = tensor('W_enc')!;
  const b_enc = tensor('b_enc')!;
  const W_dec = tensor('W_dec')!;
  const b_dec = tensor('b_dec')!;
  const threshold = tensor('threshold');
  const [d, m] = variant.tensors.find((t) => t.name === 'W_enc')!.shape;
  const fn = cfg.activation_fn_str ?? cfg.activation_fn ?? 'relu';
  const kind =
    cfg.architecture === 'jumprelu'
      ? 'jumprelu'
      : cfg.architecture === 'topk' || fn === 'topk'
        ? 'topk'
        : 'relu';
  const kwargs = (cfg.activation_fn_kwargs ?? {}) as Json;
  const k = (cfg.k ?? kwargs.k) as number;
  const applyBDec = cfg.apply_b_dec_to_input ?? true;
  const scale = cfg.finetuning_scaling_factor
    ? (tensor('scaling_factor') ?? tensor('finetuning_scaling_factor'))
    : undefined;
  const norm = cfg.normalize_activations;
  const meta = (cfg.metadata ?? {}) as Json;
  const kwargs6 = (meta.model_from_pretrained_kwargs ?? cfg.model_from_pretrained_kwargs ?? {}) as Json;
  const hook = (meta.hook_name ?? cfg.hook_name ?? cfg.hook_point) as string;
  // TransformerLens' centred writing weights make residual-stream activations mean-free over d_model
  const centred =
    (variant.centerWritingWeights ?? kwargs6.center_writing_weights === true) &&
    /hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out)$/.test(hook);

  const acts = new Float64Array(rows * m);
  const recon = new Float64Array(rows * d);
  let margin = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rows; r++) {
    let row = Array.from(x.subarray(r * d, (r + 1) * d), Number);
    if (centred) {
      const mean = row.reduce((a, b) => a + b, 0) / d;
      row = row.map((v) => v - mean);
    }
    let coeff = 1;
    let mu = 0;
    let std = 1;
    if (norm === 'constant_norm_rescale') coeff = Math.sqrt(d) / Math.hypot(...row);
    if (norm === 'expected_average_only_in' || norm === true) coeff = variant.normScalingFactor!;
    if (norm === 'layer_norm') {
      mu = row.reduce((a, b) => a + b, 0) / d;
      std = Math.sqrt(row.reduce((a, v) => a + (v - mu) ** 2, 0) / (d - 1));
    }
    const sIn = row.map((v, j) =>
      norm === 'layer_norm'
        ? (v - mu) / (std + 1e-5) - (applyBDec ? b_dec[j] : 0)
        : v * coeff - (applyBDec ? b_dec[j] : 0),
    );
    const pre = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = b_enc[i];
      for (let j = 0; j < d; j++) s += sIn[j] * W_enc[j * m + i];
      pre[i] = s;
    }
    const out = acts.subarray(r * m, (r + 1) * m);
    if (kind === 'topk') {
      const order = Array.from(pre.keys()).sort((a, b) => pre[b] - pre[a]);
      for (const i of order.slice(0, k)) out[i] = Math.max(0, pre[i]);
      margin = Math.min(margin, pre[order[k - 1]] - pre[order[k]]);
    } else {
      for (let i = 0; i < m; i++) {
        const open = kind === 'jumprelu' ? pre[i] > threshold![i] : true;
        out[i] = open ? Math.max(0, pre[i]) : 0;
        if (kind === 'jumprelu') margin = Math.min(margin, Math.abs(pre[i] - threshold![i]));
      }
    }
    for (let i = 0; i < m; i++) margin = Math.min(margin, Math.abs(pre[i]));
    for (let j = 0; j < d; j++) {
      let s = b_dec[j];
      for (let i = 0; i < m; i++) s += out[i] * (scale ? scale[i] : 1) * W_dec[i * d + j];
      recon[r * d + j] = norm === 'layer_norm' ? s * std + mu : s / coeff;
    }
  }
  return { acts, recon, margin };
}
