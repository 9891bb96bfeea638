import { hookWidth, LoupeError, parseHook, UserInputError } from '@loupe/common';
import type { ModelManifest } from '@loupe/model';
import type { SaeConfig } from '../format/sae-model.js';

/**
 * TransformerLens' names for models whose Hugging Face name differs (SAELens cfg.json files use
 * TransformerLens names, Loupe's models are named after their Hugging Face repository).
 */
const MODEL_ALIASES: Record<string, string> = { 'gpt2-small': 'gpt2' };

/** The name Loupe gives the model an SAE's cfg.json names (TransformerLens' `gpt2-small` is `gpt2`). */
export function loupeModelName(name: string): string {
  return MODEL_ALIASES[name] ?? name;
}

function canonicalModel(name: string): string {
  const bare = name.trim().toLowerCase().split('/').pop() ?? '';
  return MODEL_ALIASES[bare] ?? bare;
}

/**
 * Checks that an SAE can run on a converted model: its hook is one of the model's, that hook is
 * d_in wide, and the model it was trained on (when cfg.json says) is this one. Returns the name the
 * library records for it: the model's, so its features sit beside that model's neurons.
 */
export function matchSaeToModel(
  config: SaeConfig,
  model: ModelManifest,
  modelDir: string,
  /** false when d_in is not known yet (a cfg.json without it, before the weights are read) */
  checkWidth = true,
): string {
  const which = `model "${model.name}" (${modelDir})`;
  if (config.hookName === null)
    throw new UserInputError(
      `the SAE's cfg.json names no hook (hook_name, or hook_point in older files), so it cannot be checked against ${which}`,
    );
  let ref: ReturnType<typeof parseHook>;
  try {
    ref = parseHook(config.hookName, model.dims.nLayer);
  } catch (err) {
    if (!(err instanceof LoupeError)) throw err;
    throw new UserInputError(
      `the SAE reads hook "${config.hookName}", which ${which} does not have: ${err.message}`,
      'UNKNOWN_HOOK',
    );
  }
  const width = hookWidth(ref, model.dims);
  if (checkWidth && width !== config.dIn)
    throw new UserInputError(
      `the SAE reads ${config.hookName} with d_in ${config.dIn}, but ${which} is ${width} wide there`,
    );
  if (config.modelName !== null) {
    const wanted = canonicalModel(config.modelName);
    const names = [model.name, model.source.repo].filter((n): n is string => typeof n === 'string');
    if (!names.some((n) => canonicalModel(n) === wanted))
      throw new UserInputError(
        `the SAE was trained on model "${config.modelName}" (cfg.json model_name), not ${which}; pass --model with a converted ${config.modelName}`,
        'UNKNOWN_MODEL',
      );
  }
  return model.name;
}
