import { parseHook, UserInputError } from '@loupe/common';
import type { ResidualAddition } from './gpt2-runner.js';

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
