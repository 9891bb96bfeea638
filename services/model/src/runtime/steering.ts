import { parseHook, UserInputError } from '@loupe/common';
import type { FeatureClamp, ResidualAddition } from './gpt2-runner.js';

/** The user-facing spelling of a residual addition: a hook name instead of a layer index. */
export interface SteeringSpec {
  hook: string;
  vector: number[];
  strength?: number;
}

/**
 * Residual additions act at blocks.{L}.hook_resid_pre, the only place the graph takes a steering
 * input; other hooks are refused with the list of what is allowed.
 */
export function toResidualAdditions(specs: unknown, nLayer: number): ResidualAddition[] {
  if (!Array.isArray(specs))
    throw new UserInputError('steering must be a JSON array of {"hook","vector","strength"}');
  return specs.map((spec, index): ResidualAddition => {
    const item = spec as Partial<SteeringSpec> | null;
    if (!item || typeof item.hook !== 'string' || !Array.isArray(item.vector)) {
      throw new UserInputError(
        `steering[${index}]: expected {"hook": "blocks.L.hook_resid_pre", "vector": [...], "strength": s}`,
      );
    }
    const ref = parseHook(item.hook, nLayer);
    if (ref.kind !== 'block' || ref.hook !== 'hook_resid_pre') {
      throw new UserInputError(
        `steering[${index}]: "${item.hook}" cannot be steered; use blocks.{L}.hook_resid_pre (L = 0-${nLayer - 1})`,
      );
    }
    if (item.vector.some((v) => typeof v !== 'number'))
      throw new UserInputError(`steering[${index}]: vector must hold numbers`);
    const strength = item.strength ?? 1;
    if (typeof strength !== 'number')
      throw new UserInputError(`steering[${index}]: strength must be a number`);
    return { layer: ref.layer, vector: Float32Array.from(item.vector as number[]), strength };
  });
}

/** The wire spelling of a feature clamp (capture.proto's FeatureClamp). */
export interface FeatureClampSpec {
  hook: string;
  encoderColumn: number[];
  encoderBias: number;
  /** empty when the SAE does not centre its input */
  bDec: number[];
  decoderRow: number[];
  threshold: number;
  value: number;
}

/**
 * Clamps act at blocks.{L}.hook_resid_pre, like additions. b_dec is folded into the bias here (in
 * float64: b_enc − b_dec·W_enc[:, f]) so the graph computes pre = x·W_enc[:, f] + bias. Widths are
 * checked against d_model by the runner.
 */
export function toFeatureClamps(specs: FeatureClampSpec[], nLayer: number, dModel: number): FeatureClamp[] {
  return specs.map((spec, index): FeatureClamp => {
    const ref = parseHook(spec.hook, nLayer);
    if (ref.kind !== 'block' || ref.hook !== 'hook_resid_pre') {
      throw new UserInputError(
        `clamps[${index}]: "${spec.hook}" cannot be clamped; use blocks.{L}.hook_resid_pre (L = 0-${nLayer - 1})`,
      );
    }
    if (spec.encoderColumn.length !== dModel || spec.decoderRow.length !== dModel) {
      throw new UserInputError(
        `clamps[${index}]: encoder_column and decoder_row need d_model = ${dModel} values, got ${spec.encoderColumn.length} and ${spec.decoderRow.length}`,
      );
    }
    if (spec.bDec.length !== 0 && spec.bDec.length !== dModel) {
      throw new UserInputError(
        `clamps[${index}]: b_dec needs d_model = ${dModel} values (or none), got ${spec.bDec.length}`,
      );
    }
    let bias = spec.encoderBias;
    for (const [i, b] of spec.bDec.entries()) bias -= b * spec.encoderColumn[i];
    return {
      layer: ref.layer,
      encoder: Float32Array.from(spec.encoderColumn),
      bias,
      threshold: spec.threshold,
      value: spec.value,
      decoder: Float32Array.from(spec.decoderRow),
    };
  });
}
