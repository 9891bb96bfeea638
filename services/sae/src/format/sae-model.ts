/** SAE architectures that can be read and written in SAELens' layout. */
export const SAE_ARCHITECTURES = ['standard', 'topk', 'jumprelu'] as const;
export type SaeArchitecture = (typeof SAE_ARCHITECTURES)[number];

/**
 * SAELens' `normalize_activations` values that need nothing beyond the SAE folder to apply (per input
 * row, undone on the way out: see `inputScales` in sae-forward.ts).
 */
export const SAE_NORMALISATIONS = ['none', 'constant_norm_rescale', 'layer_norm'] as const;
export type SaeNormalisation = (typeof SAE_NORMALISATIONS)[number];

/** What an SAE is, independent of file layout. Names follow SAELens' cfg.json fields. */
export interface SaeConfig {
  architecture: SaeArchitecture;
  dIn: number;
  dSae: number;
  /** latents kept per vector (topk only) */
  k?: number;
  hookName: string | null;
  modelName: string | null;
  /** subtract b_dec from the input before encoding (SAELens' default) */
  applyBDecToInput: boolean;
  normalizeActivations: SaeNormalisation;
  /**
   * The factor the training data was multiplied by, already folded into the weights (see
   * `foldActivationScale`); recorded so the training scale stays known. 1 when none was used.
   */
  activationScale: number;
}

/** Weights in SAELens' orientation: x̂ = acts · W_dec + b_dec, pre = (x − b_dec) · W_enc + b_enc. */
export interface SaeWeights {
  /** [d_in, d_sae] */
  W_enc: Float32Array;
  /** [d_sae] */
  b_enc: Float32Array;
  /** [d_sae, d_in] */
  W_dec: Float32Array;
  /** [d_in] */
  b_dec: Float32Array;
  /** [d_sae], jumprelu only */
  threshold?: Float32Array;
}

export interface Sae {
  config: SaeConfig;
  weights: SaeWeights;
}

export function weightShapes(config: Pick<SaeConfig, 'dIn' | 'dSae'>): Record<keyof SaeWeights, number[]> {
  const { dIn, dSae } = config;
  return { W_enc: [dIn, dSae], b_enc: [dSae], W_dec: [dSae, dIn], b_dec: [dIn], threshold: [dSae] };
}

/**
 * Weights for raw activations from weights trained on activations × `scale`, as SAELens'
 * `fold_activation_norm_scaling_factor` does: encode and decode of x then equal those of x·scale,
 * divided back out. A jumprelu threshold lives in latent space and is unchanged.
 */
export function foldActivationScale(weights: SaeWeights, scale: number): SaeWeights {
  return {
    ...weights,
    W_enc: Float32Array.from(weights.W_enc, (v) => v * scale),
    W_dec: Float32Array.from(weights.W_dec, (v) => v / scale),
    b_dec: Float32Array.from(weights.b_dec, (v) => v / scale),
  };
}
