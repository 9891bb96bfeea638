import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CheckpointError,
  isFloatDtype,
  SafetensorsReader,
  type TensorToWrite,
  writeSafetensors,
} from '@loupe/common';
import { saeLensArchitecture } from './architectures/registry.js';
import {
  SAE_ARCHITECTURES,
  SAE_NORMALISATIONS,
  type Sae,
  type SaeArchitecture,
  type SaeConfig,
  type SaeNormalisation,
  type SaeWeights,
  weightShapes,
} from './sae-model.js';

/**
 * SAELens' on-disk layout (v6): a folder with `cfg.json` and `sae_weights.safetensors` holding W_enc
 * [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] (+ threshold [d_sae] for jumprelu).
 * We write the v6 cfg (architecture-specific fields at the top, `metadata` for model and hook) and read
 * both v6 and the older flat layout (`hook_name` / `hook_point` at the top, topk's k in
 * `activation_fn_kwargs`), as SAELens' own loader does.
 */
export const CFG_FILE = 'cfg.json';
export const WEIGHTS_FILE = 'sae_weights.safetensors';

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

/** Reads an SAE folder written by SAELens (v6 or older flat cfg) or by `writeSaeLens`. */
export async function readSaeLens(dir: string): Promise<Sae> {
  const cfg = await readCfg(dir);
  const config = parseConfig(cfg, dir);
  const weights = await readWeights(dir, config);
  return { config, weights };
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

function parseConfig(cfg: Json, dir: string): SaeConfig {
  const file = path.join(dir, CFG_FILE);
  const bad = (problem: string) => new CheckpointError(`${file}: ${problem}`);
  const positiveInt = (key: string): number => {
    const v = cfg[key];
    if (!Number.isSafeInteger(v) || (v as number) < 1)
      throw bad(`"${key}" must be a positive whole number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const dIn = positiveInt('d_in');
  const dSae = positiveInt('d_sae');

  // SAELens defaults a missing architecture to standard.
  const architecture = cfg.architecture ?? 'standard';
  if (!(SAE_ARCHITECTURES as readonly unknown[]).includes(architecture)) {
    throw bad(
      `architecture ${JSON.stringify(architecture)} is not supported; supported: ${SAE_ARCHITECTURES.join(', ')}`,
    );
  }

  const fields = saeLensArchitecture(architecture as SaeArchitecture).readFields(cfg, dSae, bad);

  const dtype = cfg.dtype ?? 'float32';
  if (typeof dtype !== 'string') throw bad(`"dtype" must be a string, got ${JSON.stringify(dtype)}`);

  // Older SAELens wrote a boolean: true meant expected_average_only_in.
  let norm = cfg.normalize_activations ?? 'none';
  if (norm === false) norm = 'none';
  if (norm === true) norm = 'expected_average_only_in';
  if (!(SAE_NORMALISATIONS as readonly unknown[]).includes(norm)) {
    const hint =
      norm === 'expected_average_only_in'
        ? ': its scaling factor is not stored in the folder; fold it into the weights first (SAELens fold_activation_norm_scaling_factor)'
        : '';
    throw bad(
      `normalize_activations ${JSON.stringify(norm)} is not supported${hint}; supported: ${SAE_NORMALISATIONS.join(', ')}`,
    );
  }
  if (cfg.reshape_activations !== undefined && cfg.reshape_activations !== 'none')
    throw bad(
      `reshape_activations ${JSON.stringify(cfg.reshape_activations)} is not supported; supported: none`,
    );

  const applyBDec = cfg.apply_b_dec_to_input ?? true;
  if (typeof applyBDec !== 'boolean') throw bad(`"apply_b_dec_to_input" must be true or false`);

  const meta = [cfg.metadata, cfg.meta].find((m) => typeof m === 'object' && m !== null) as Json | undefined;
  const text = (...values: unknown[]) =>
    (values.find((v) => typeof v === 'string') as string | undefined) ?? null;
  const loupe = typeof cfg.loupe === 'object' && cfg.loupe !== null ? (cfg.loupe as Json) : {};
  const scale = loupe.activation_scale ?? 1;
  if (typeof scale !== 'number' || !(scale > 0))
    throw bad(`loupe.activation_scale must be a positive number`);

  return {
    architecture: architecture as SaeArchitecture,
    dIn,
    dSae,
    ...fields,
    hookName: text(meta?.hook_name, cfg.hook_name, cfg.hook_point),
    modelName: text(meta?.model_name, cfg.model_name),
    applyBDecToInput: applyBDec,
    normalizeActivations: norm as SaeNormalisation,
    activationScale: scale,
  };
}

async function readWeights(dir: string, config: SaeConfig): Promise<SaeWeights> {
  const file = path.join(dir, WEIGHTS_FILE);
  const reader = await SafetensorsReader.open(file).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CheckpointError(`${dir}: no ${WEIGHTS_FILE}`);
    throw err;
  });
  try {
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
    await checkScalingFactor(reader, file);
    const weights: Partial<SaeWeights> = {};
    for (const name of weightNames(config)) weights[name] = await read(name);
    return weights as SaeWeights;
  } finally {
    await reader.close();
  }
}

/**
 * Some SAELens releases carry a `scaling_factor` (finetuning scale on the latents). All ones means
 * none, as SAELens itself decides; anything else we do not model, so refuse rather than mis-encode.
 */
async function checkScalingFactor(reader: SafetensorsReader, file: string): Promise<void> {
  for (const name of ['scaling_factor', 'finetuning_scaling_factor']) {
    if (!reader.tensors.has(name)) continue;
    const values = await reader.readFloat32(name);
    if (values.some((v) => v !== 1))
      throw new CheckpointError(
        `${file}: tensor "${name}" is not all ones; finetuning scaling factors are not supported`,
      );
  }
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
