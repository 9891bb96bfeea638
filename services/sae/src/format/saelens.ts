import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CheckpointError,
  isFloatDtype,
  SafetensorsReader,
  type TensorToWrite,
  UserInputError,
  writeSafetensors,
} from '@loupe/common';
import { saeLensArchitecture } from './architectures/registry.js';
import { foldActivationScale, type Sae, type SaeConfig, type SaeWeights, weightShapes } from './sae-model.js';
import { type ParsedSaeLensCfg, parseSaeLensCfg } from './saelens-cfg.js';

/**
 * SAELens' on-disk layout (v6): a folder with `cfg.json` and `sae_weights.safetensors` holding W_enc
 * [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] (+ threshold [d_sae] for jumprelu).
 * We write the v6 cfg (architecture-specific fields at the top, `metadata` for model and hook) and read
 * both v6 and the older flat layout (`hook_name` / `hook_point` at the top, topk's k in
 * `activation_fn_kwargs`), as SAELens' own loader does.
 */
export const CFG_FILE = 'cfg.json';
export const WEIGHTS_FILE = 'sae_weights.safetensors';
/** SAELens' per-latent log10 firing frequency (tensor `sparsity` [d_sae]), present in some folders. */
export const SPARSITY_FILE = 'sparsity.safetensors';

/**
 * The SAELens version whose layout we write. SAELens reads a cfg without a version as pre-6 and
 * converts it; stating 6.0.0 makes it take the v6 path, which is the layout written here.
 */
const SAELENS_FORMAT_VERSION = '6.0.0';

type Json = Record<string, unknown>;

/** Writes an SAE folder that SAELens' `SAE.load_from_disk` reads. */
export async function writeSaeLens(dir: string, sae: Sae, extra: Json = {}): Promise<void> {
  const { config, weights } = sae;
  checkWeights(config, weights, dir);
  await mkdir(dir, { recursive: true });
  const shapes = weightShapes(config);
  const names = weightNames(config);
  const tensors: TensorToWrite[] = names.map((name) => ({
    name,
    dtype: 'F32',
    shape: shapes[name],
    data: weights[name]!,
  }));
  await writeSafetensors(path.join(dir, WEIGHTS_FILE), tensors);
  const cfgPath = path.join(dir, CFG_FILE);
  const tmp = `${cfgPath}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(toCfgJson(config, extra), null, 2)}\n`);
  await rename(tmp, cfgPath);
}

function toCfgJson(config: SaeConfig, extra: Json): Json {
  const metadata: Json = {
    sae_lens_version: SAELENS_FORMAT_VERSION,
    model_name: config.modelName,
    hook_name: config.hookName,
  };
  const layer = config.hookName?.match(/^blocks\.(\d+)\./);
  if (layer) metadata.hook_layer = Number(layer[1]);
  return {
    architecture: config.architecture,
    d_in: config.dIn,
    d_sae: config.dSae,
    ...saeLensArchitecture(config.architecture).writeFields(config),
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: config.applyBDecToInput,
    normalize_activations: config.normalizeActivations,
    reshape_activations: 'none',
    metadata,
    // SAELens keeps only the fields its config classes declare, so ours ride along unread.
    loupe: { activation_scale: config.activationScale, ...extra },
  };
}

export interface ReadSaeLensOptions {
  /**
   * For `normalize_activations: expected_average_only_in`: the dataset's norm scaling factor (SAELens'
   * `norm_scaling_factor` for the SAE), folded into the weights as SAELens' `from_pretrained` does.
   */
  normScalingFactor?: number;
  /**
   * Whether the SAE read a TransformerLens model with centred writing weights, when its release says
   * so outside the folder (SAELens' config_overrides, e.g. gpt2-small-res-jb); overrides cfg.json's
   * `model_from_pretrained_kwargs.center_writing_weights`.
   */
  centerWritingWeights?: boolean;
}

/**
 * Reads an SAE folder written by SAELens (v6 or an older flat cfg, see saelens-cfg.ts) or by
 * `writeSaeLens`. What older layouts keep beside the weights (a finetuning scaling factor, a norm
 * scaling factor) is folded in, so the SAE returned encodes and decodes with SAELens' semantics
 * through the plain forward of sae-forward.ts.
 */
export async function readSaeLens(dir: string, options: ReadSaeLensOptions = {}): Promise<Sae> {
  const cfg = await readCfg(dir);
  const cfgFile = path.join(dir, CFG_FILE);
  const bad = (problem: string) => new CheckpointError(`${cfgFile}: ${problem}`);
  const file = path.join(dir, WEIGHTS_FILE);
  const reader = await SafetensorsReader.open(file).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // A cfg.json that is wrong says more than a missing weights file (when it states its widths).
    if (stated(cfg.d_in) && stated(cfg.d_sae)) parseSaeLensCfg(cfg, bad, undefined);
    throw new CheckpointError(`${dir}: no ${WEIGHTS_FILE}`);
  });
  try {
    const parsed = parseSaeLensCfg(cfg, bad, reader.tensors.get('W_enc')?.shape);
    let weights = await readWeights(reader, file, parsed.config);
    weights = await applyFinetuningScale(reader, file, parsed, weights);
    let sae: Sae = { config: parsed.config, weights };
    if (options.centerWritingWeights ?? parsed.centerWritingWeights) sae = foldInputCentring(sae, cfgFile);
    return parsed.normalisation === 'expected_average_only_in'
      ? foldNormScalingFactor(sae, cfgFile, options.normScalingFactor)
      : sae;
  } finally {
    await reader.close();
  }
}

const stated = (value: unknown) => value !== undefined && value !== null;

/**
 * What an SAE folder's cfg.json alone says, for checks before its weights are at hand (a pull checks
 * the SAE against the model before downloading them). Widths the file leaves out are unknown (d_in
 * stands in as 1, `dInStated` false; d_sae as unbounded); everything else is read, and refused, as
 * `readSaeLens` does.
 */
export async function readSaeLensCfg(
  dir: string,
  options: ReadSaeLensOptions = {},
): Promise<{ config: SaeConfig; dInStated: boolean }> {
  const cfg = await readCfg(dir);
  const cfgFile = path.join(dir, CFG_FILE);
  const bad = (problem: string) => new CheckpointError(`${cfgFile}: ${problem}`);
  const parsed = parseSaeLensCfg(cfg, bad, [1, Number.MAX_SAFE_INTEGER]);
  if (parsed.normalisation === 'expected_average_only_in' && options.normScalingFactor === undefined)
    throw missingNormScalingFactor(cfgFile);
  return { config: parsed.config, dInStated: stated(cfg.d_in) };
}

async function readCfg(dir: string): Promise<Json> {
  const file = path.join(dir, CFG_FILE);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new CheckpointError(
      `${dir}: no ${CFG_FILE}; an SAELens SAE folder holds ${CFG_FILE} and ${WEIGHTS_FILE}`,
    );
  });
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new CheckpointError(`${file}: must hold a JSON object`);
  return cfg as Json;
}

async function readWeights(reader: SafetensorsReader, file: string, config: SaeConfig): Promise<SaeWeights> {
  const shapes = weightShapes(config);
  const read = async (name: keyof SaeWeights): Promise<Float32Array> => {
    const info = reader.tensors.get(name);
    if (!info)
      throw new CheckpointError(`${file}: no tensor "${name}" (a ${config.architecture} SAE needs it)`);
    const want = shapes[name];
    if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) {
      throw new CheckpointError(
        `${file}: tensor "${name}" has shape [${info.shape.join(', ')}], expected [${want.join(', ')}] for d_in = ${config.dIn}, d_sae = ${config.dSae}`,
      );
    }
    if (!isFloatDtype(info.dtype))
      throw new CheckpointError(`${file}: tensor "${name}" is ${info.dtype}, not a float`);
    return reader.readFloat32(name);
  };
  const weights: Partial<SaeWeights> = {};
  for (const name of weightNames(config)) weights[name] = await read(name);
  return weights as SaeWeights;
}

/** The tensor names pre-6 SAELens stored the finetuning scaling factor under (older first). */
const FINETUNING_TENSORS = ['scaling_factor', 'finetuning_scaling_factor'] as const;

/**
 * SAELens 5 decodes `(acts · s) @ W_dec + b_dec` when `finetuning_scaling_factor` is on, with s a
 * per-latent tensor; its loader drops an all-ones tensor and refuses one that is not all ones while
 * the flag is off. Scaling W_dec's rows by s gives the same decode and leaves the latents (what
 * records and explanations are about) exactly as SAELens' encode gives them.
 */
async function applyFinetuningScale(
  reader: SafetensorsReader,
  file: string,
  parsed: ParsedSaeLensCfg,
  weights: SaeWeights,
): Promise<SaeWeights> {
  const { dIn, dSae } = parsed.config;
  const name = FINETUNING_TENSORS.find((n) => reader.tensors.has(n));
  if (!name) {
    if (parsed.finetuningScalingFactor)
      throw new CheckpointError(
        `${file}: cfg.json says finetuning_scaling_factor true, but there is no tensor ${FINETUNING_TENSORS.map((n) => `"${n}"`).join(' or ')}`,
      );
    return weights;
  }
  const info = reader.tensors.get(name)!;
  if (info.shape.length !== 1 || info.shape[0] !== dSae || !isFloatDtype(info.dtype))
    throw new CheckpointError(
      `${file}: tensor "${name}" is ${info.dtype} [${info.shape.join(', ')}], expected a float [${dSae}]`,
    );
  const scale = await reader.readFloat32(name);
  if (scale.every((v) => v === 1)) return weights;
  if (!parsed.finetuningScalingFactor)
    throw new CheckpointError(
      `${file}: tensor "${name}" is not all ones but cfg.json says finetuning_scaling_factor ${JSON.stringify(parsed.finetuningScalingFactor)}; SAELens refuses such a folder too`,
    );
  const W_dec = new Float32Array(weights.W_dec.length);
  for (let i = 0; i < dSae; i++)
    for (let j = 0; j < dIn; j++) W_dec[i * dIn + j] = weights.W_dec[i * dIn + j] * scale[i];
  return { ...weights, W_dec };
}

/** Hooks that sum writes to the residual stream: centring the writing weights centres them. */
const RESIDUAL_HOOK =
  /^(hook_embed|hook_pos_embed|blocks\.\d+\.hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out))$/;

/**
 * TransformerLens' `center_writing_weights` makes every write to the residual stream (embeddings,
 * attention and MLP outputs) mean-free over d_model, so at the residual hooks its activations are
 * Hugging Face's (Loupe's) minus their mean: x_TL = P·x with P = I − 11ᵀ/d. The encoder of an SAE
 * trained on those is folded to read raw ones: (P·x − b_dec)·W_enc + b_enc = (x − b_dec)·(P·W_enc)
 * + b_enc − mean(b_dec)·1ᵀW_enc. Latents are then exactly TransformerLens'; reconstructions lack the
 * input's mean, which every LayerNorm downstream ignores. layer_norm SAEs centre their input anyway,
 * and the MLP's own hooks are not centred, so those are left alone; constant_norm_rescale takes the
 * norm of the centred vector, which no fold reproduces.
 */
function foldInputCentring(sae: Sae, cfgFile: string): Sae {
  const { dIn, dSae, hookName, normalizeActivations, applyBDecToInput } = sae.config;
  if (hookName === null)
    throw new CheckpointError(
      `${cfgFile}: center_writing_weights is true but cfg.json names no hook, so it cannot tell whether the SAE's input was centred`,
    );
  if (!RESIDUAL_HOOK.test(hookName) || normalizeActivations === 'layer_norm') return sae;
  if (normalizeActivations === 'constant_norm_rescale')
    throw new CheckpointError(
      `${cfgFile}: normalize_activations "constant_norm_rescale" with center_writing_weights true is not supported (the norm is of the centred input)`,
    );
  const { W_enc, b_enc, b_dec } = sae.weights;
  const colMean = new Float64Array(dSae);
  for (let j = 0; j < dIn; j++) for (let i = 0; i < dSae; i++) colMean[i] += W_enc[j * dSae + i] / dIn;
  const centred = new Float32Array(W_enc.length);
  for (let j = 0; j < dIn; j++)
    for (let i = 0; i < dSae; i++) centred[j * dSae + i] = W_enc[j * dSae + i] - colMean[i];
  let bDecMean = 0;
  for (let j = 0; j < dIn; j++) bDecMean += b_dec[j] / dIn;
  // only when b_dec is subtracted before encoding does its mean reach the latents
  const shift = applyBDecToInput ? bDecMean * dIn : 0;
  const bEnc = Float32Array.from(b_enc, (v, i) => v - shift * colMean[i]);
  return { config: sae.config, weights: { ...sae.weights, W_enc: centred, b_enc: bEnc } };
}

function missingNormScalingFactor(cfgFile: string): CheckpointError {
  return new CheckpointError(
    `${cfgFile}: normalize_activations "expected_average_only_in" needs the dataset's norm scaling factor, and that scaling factor is not stored in the folder; pass it (SAELens' norm_scaling_factor for this SAE, e.g. loupe sae pull --norm-scaling-factor <f>) to fold it into the weights`,
  );
}

/**
 * expected_average_only_in: SAELens trained on activations × f (f = √d_in / mean ‖x‖ over the
 * dataset) and, with f known, folds it in (fold_activation_norm_scaling_factor) and sets the
 * normalisation to none; the folder itself does not hold f.
 */
function foldNormScalingFactor(sae: Sae, cfgFile: string, factor: number | undefined): Sae {
  if (factor === undefined) throw missingNormScalingFactor(cfgFile);
  if (!(Number.isFinite(factor) && factor > 0))
    throw new UserInputError(`the norm scaling factor must be a positive number, got ${factor}`);
  return {
    config: {
      ...sae.config,
      normalizeActivations: 'none',
      activationScale: sae.config.activationScale * factor,
    },
    weights: foldActivationScale(sae.weights, factor),
  };
}

function checkWeights(config: SaeConfig, weights: SaeWeights, where: string): void {
  const shapes = weightShapes(config);
  for (const name of weightNames(config)) {
    const size = shapes[name].reduce((a, b) => a * b, 1);
    const got = weights[name]?.length;
    if (got !== size)
      throw new Error(`${where}: ${name} has ${got} values, [${shapes[name].join(', ')}] needs ${size}`);
  }
  const problem = saeLensArchitecture(config.architecture).checkFields(config);
  if (problem) throw new Error(`${where}: ${problem}`);
}

/** The tensors of an SAE folder, in file order: the common four, then the architecture's. */
function weightNames(config: SaeConfig): (keyof SaeWeights)[] {
  return ['W_enc', 'b_enc', 'W_dec', 'b_dec', ...saeLensArchitecture(config.architecture).extraWeights];
}
