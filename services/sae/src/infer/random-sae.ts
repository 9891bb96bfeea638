import { Rng } from '@loupe/common';
import { saeLensArchitecture } from '../format/architectures/registry.js';
import type { Sae, SaeArchitecture, SaeNormalisation } from '../format/sae-model.js';

/** A random SAE for tests: Gaussian weights, positive-ish encoder bias so latents fire often. */
export function randomSae(
  architecture: SaeArchitecture,
  dIn: number,
  dSae: number,
  seed: number,
  options: { normalizeActivations?: SaeNormalisation; applyBDecToInput?: boolean; k?: number } = {},
): Sae {
  const rng = Rng.derive(seed, 'test/random-sae');
  const weights = {
    W_enc: rng.normalFloat32(dIn * dSae, 0, 1 / Math.sqrt(dIn)),
    b_enc: rng.normalFloat32(dSae, 0, 0.1),
    W_dec: rng.normalFloat32(dSae * dIn, 0, 1 / Math.sqrt(dSae)),
    b_dec: rng.normalFloat32(dIn, 0, 0.1),
  };
  const extra = saeLensArchitecture(architecture).random(rng, dSae, options.k);
  return {
    config: {
      architecture,
      dIn,
      dSae,
      ...extra.fields,
      hookName: 'blocks.0.hook_resid_post',
      modelName: 'gpt2',
      applyBDecToInput: options.applyBDecToInput ?? true,
      normalizeActivations: options.normalizeActivations ?? 'none',
      activationScale: 1,
    },
    weights: { ...weights, ...extra.weights },
  };
}
