import { saeLensArchitecture } from './architectures/registry.js';
import {
  SAE_ARCHITECTURES,
  SAE_NORMALISATIONS,
  type SaeArchitecture,
  type SaeConfig,
  type SaeNormalisation,
} from './sae-model.js';

/**
 * What a SAELens `cfg.json` means, for every layout published on the hub: v6 (architecture fields at
 * the top, model and hook under `metadata`), and the flat pre-6 layout that SAELens' own
 * `handle_pre_6_0_config` converts (`hook_point`, `hook_point_layer`, `hook_point_head_index`,
 * `activation_fn_str` with topk's k in `activation_fn_kwargs`, `finetuning_scaling_factor`, a boolean
 * `normalize_activations`, `dtype` spelt `torch.float32`). A field whose value would change what the SAE
 * computes, and that Loupe cannot reproduce, is refused by name rather than ignored.
 */

type Json = Record<string, unknown>;

/** The normalisations a cfg.json may name that Loupe can apply (one of them only with outside help). */
export type SaeLensNormalisation = SaeNormalisation | 'expected_average_only_in';

/** cfg.json read, before the weights file has had its say. */
export interface ParsedSaeLensCfg {
  config: SaeConfig;
  /**
   * expected_average_only_in: the SAE wants its input multiplied by the dataset's norm scaling factor,
   * which SAELens keeps outside the folder (its pretrained_saes.yaml) and folds in at load time.
   */
  normalisation: SaeLensNormalisation;
  /** pre-6 `finetuning_scaling_factor`: latents are multiplied by a per-latent tensor before decoding */
  finetuningScalingFactor: boolean;
  /**
   * `model_from_pretrained_kwargs.center_writing_weights`: the SAE was trained on a TransformerLens
   * model whose writes to the residual stream are centred, so it read activations minus their mean.
   */
  centerWritingWeights: boolean;
}

/** The dtypes SAELens' DTYPE_MAP knows; weights are read and computed in float32 whatever they say. */
const SAELENS_DTYPES = [
  'float32',
  'float64',
  'float16',
  'bfloat16',
  'torch.float32',
  'torch.float64',
  'torch.float16',
  'torch.bfloat16',
];

/** Pre-6 activation functions and the v6 architecture each means. */
const ACTIVATION_FNS = ['relu', 'topk'] as const;

export function parseSaeLensCfg(
  cfg: Json,
  bad: (problem: string) => Error,
  /** [d_in, d_sae] from W_enc, for files that leave d_in or d_sae out */
  encoderShape: readonly number[] | undefined,
): ParsedSaeLensCfg {
  const dim = (key: 'd_in' | 'd_sae', axis: 0 | 1): number => {
    const v = cfg[key] ?? encoderShape?.[axis];
    if (!Number.isSafeInteger(v) || (v as number) < 1)
      throw bad(`"${key}" must be a positive whole number, got ${JSON.stringify(cfg[key])}`);
    return v as number;
  };
  const dIn = dim('d_in', 0);
  const dSae = dim('d_sae', 1);

  const architecture = readArchitecture(cfg, bad);
  const fields = saeLensArchitecture(architecture).readFields(cfg, dSae, bad);

  const dtype = cfg.dtype ?? 'float32';
  if (!SAELENS_DTYPES.includes(dtype as string))
    throw bad(`dtype ${JSON.stringify(dtype)} is not supported; supported: ${SAELENS_DTYPES.join(', ')}`);

  const normalisation = readNormalisation(cfg, bad);
  if (cfg.reshape_activations !== undefined && cfg.reshape_activations !== 'none')
    throw bad(
      `reshape_activations ${JSON.stringify(cfg.reshape_activations)} is not supported; supported: none`,
    );

  const applyBDec = cfg.apply_b_dec_to_input ?? true;
  if (typeof applyBDec !== 'boolean')
    throw bad(`apply_b_dec_to_input must be true or false, got ${JSON.stringify(applyBDec)}`);

  const finetuning = cfg.finetuning_scaling_factor ?? false;
  if (typeof finetuning !== 'boolean')
    throw bad(`finetuning_scaling_factor must be true or false, got ${JSON.stringify(finetuning)}`);

  const loupe = typeof cfg.loupe === 'object' && cfg.loupe !== null ? (cfg.loupe as Json) : {};
  const scale = loupe.activation_scale ?? 1;
  if (typeof scale !== 'number' || !(scale > 0))
    throw bad(`loupe.activation_scale must be a positive number`);

  const meta = [cfg.metadata, cfg.meta].find((m) => typeof m === 'object' && m !== null) as Json | undefined;
  const text = (...values: unknown[]) =>
    (values.find((v) => typeof v === 'string') as string | undefined) ?? null;
  const hookName = text(meta?.hook_name, cfg.hook_name, cfg.hook_point);
  checkHookPlacement(cfg, meta, hookName, bad);
  const kwargs = meta?.model_from_pretrained_kwargs ?? cfg.model_from_pretrained_kwargs ?? {};
  if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs))
    throw bad(`model_from_pretrained_kwargs must be an object, got ${JSON.stringify(kwargs)}`);
  const centre = (kwargs as Json).center_writing_weights ?? false;
  if (typeof centre !== 'boolean')
    throw bad(
      `model_from_pretrained_kwargs.center_writing_weights must be true or false, got ${JSON.stringify(centre)}`,
    );

  return {
    config: {
      architecture,
      dIn,
      dSae,
      ...fields,
      hookName,
      modelName: text(meta?.model_name, cfg.model_name),
      applyBDecToInput: applyBDec,
      normalizeActivations: normalisation === 'expected_average_only_in' ? 'none' : normalisation,
      activationScale: scale,
    },
    normalisation,
    finetuningScalingFactor: finetuning,
    centerWritingWeights: centre,
  };
}

/**
 * v6 names the architecture; pre-6 files say `architecture: "standard"` (or nothing) for TopK SAEs too
 * and put `topk` in `activation_fn_str`, which SAELens 5 then used as the activation.
 */
function readArchitecture(cfg: Json, bad: (problem: string) => Error): SaeArchitecture {
  // SAELens defaults a missing architecture to standard.
  const named = cfg.architecture ?? 'standard';
  if (!(SAE_ARCHITECTURES as readonly unknown[]).includes(named)) {
    throw bad(
      `architecture ${JSON.stringify(named)} is not supported; supported: ${SAE_ARCHITECTURES.join(', ')}`,
    );
  }
  const key = cfg.activation_fn_str !== undefined ? 'activation_fn_str' : 'activation_fn';
  const fn = cfg[key];
  if (fn === undefined || fn === null) return named as SaeArchitecture;
  if (!(ACTIVATION_FNS as readonly unknown[]).includes(fn))
    throw bad(`${key} ${JSON.stringify(fn)} is not supported; supported: ${ACTIVATION_FNS.join(', ')}`);
  if (fn === 'topk') {
    if (named === 'jumprelu') throw bad(`${key} "topk" contradicts architecture "jumprelu"`);
    return 'topk';
  }
  // relu: the activation of standard SAEs, and the one jumprelu gates
  if (named === 'topk') throw bad(`${key} "relu" contradicts architecture "topk"`);
  return named as SaeArchitecture;
}

function readNormalisation(cfg: Json, bad: (problem: string) => Error): SaeLensNormalisation {
  // Older SAELens wrote a boolean (true meant expected_average_only_in); Gemma Scope's config says null.
  let norm = cfg.normalize_activations ?? 'none';
  if (norm === false) norm = 'none';
  if (norm === true) norm = 'expected_average_only_in';
  const known: readonly unknown[] = [...SAE_NORMALISATIONS, 'expected_average_only_in'];
  if (!known.includes(norm)) {
    throw bad(
      `normalize_activations ${JSON.stringify(norm)} is not supported; supported: ${known.join(', ')}`,
    );
  }
  return norm as SaeLensNormalisation;
}

/** The layer a cfg names must be the hook's, and an SAE of one attention head is not one we can run. */
function checkHookPlacement(
  cfg: Json,
  meta: Json | undefined,
  hookName: string | null,
  bad: (problem: string) => Error,
): void {
  const field = (names: string[]): [string, unknown] | undefined => {
    for (const source of [meta, cfg]) {
      for (const name of names) {
        if (source && source[name] !== undefined && source[name] !== null) return [name, source[name]];
      }
    }
    return undefined;
  };
  const head = field(['hook_head_index', 'hook_point_head_index']);
  if (head)
    throw bad(
      `${head[0]} ${JSON.stringify(head[1])} is not supported: Loupe runs SAEs on whole hooks, not on one attention head`,
    );
  const layer = field(['hook_layer', 'hook_point_layer']);
  const hookLayer = hookName?.match(/^blocks\.(\d+)\./)?.[1];
  if (layer && hookLayer !== undefined && layer[1] !== Number(hookLayer))
    throw bad(
      `${layer[0]} ${JSON.stringify(layer[1])} disagrees with hook "${hookName}" (layer ${hookLayer})`,
    );
}
