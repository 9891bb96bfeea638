import {
  exampleNeuronId,
  type FeatureRef,
  featureId,
  formatUnitId,
  LoupeError,
  type NeuronRef,
  parseUnitId,
  type UnitRef,
  UserInputError,
  unitExamples,
} from '@loupe/common';
import type { GatewayContext } from '../graphql/context.js';

export {
  type FeatureRef,
  featureId,
  formatUnitId,
  NEURON_EXAMPLE,
  type NeuronRef,
  parseUnitId,
  type UnitRef,
} from '@loupe/common';

// Unit ids are parsed in @loupe/common (units.ts); the checks against a model's or an SAE's shape are the gateway's.

/** The capture service's default model (name and layers), or null when it cannot say. */
async function servedModel(ctx: GatewayContext): Promise<{ name: string; nLayer: number } | null> {
  return ctx.loaders.modelInfo.load('').catch(() => null);
}

/**
 * parseUnitId whose message for a malformed id suggests ids of the served model (an example of gpt2
 * fails on a machine serving the offline fixture), asking the capture service only when it fails.
 */
export async function parseServedUnitId(id: string, ctx: GatewayContext): Promise<UnitRef> {
  try {
    return parseUnitId(id);
  } catch (error) {
    if (!(error instanceof UserInputError)) throw error;
    const served = await servedModel(ctx);
    if (!served) throw error;
    return parseUnitId(id, unitExamples(served));
  }
}

/** A neuron id of the served model for messages (gpt2's middle layer when the model is unknown). */
export async function servedNeuronExample(ctx: GatewayContext): Promise<string> {
  return exampleNeuronId((await servedModel(ctx)) ?? { name: 'gpt2', nLayer: 12 });
}

/** Checks the neuron against the model's shape; an id past the model's layers or width is unknown. */
export function checkNeuron(ref: NeuronRef, model: { name: string; nLayer: number; dMlp: number }): void {
  if (ref.layer >= model.nLayer || ref.index >= model.dMlp)
    throw new LoupeError(
      `unknown unit "${formatUnitId(ref)}": model ${model.name} has neurons ` +
        `${model.name}/blocks.{0-${model.nLayer - 1}}.mlp.hook_post/{0-${model.dMlp - 1}}`,
      'NOT_FOUND',
    );
}

/** Checks the feature against its SAE: the model named in the id and the SAE's width. */
export function checkFeature(ref: FeatureRef, sae: { id: string; model: string; dSae: number }): void {
  if (ref.model !== sae.model)
    throw new LoupeError(
      `unknown unit "${formatUnitId(ref)}": SAE "${sae.id}" belongs to model ${sae.model}, ` +
        `so its features are ${featureId(sae.model, sae.id, 0)} and on`,
      'NOT_FOUND',
    );
  if (ref.index >= sae.dSae)
    throw new LoupeError(
      `unknown unit "${formatUnitId(ref)}": SAE "${sae.id}" has features ` +
        `${featureId(sae.model, sae.id, 0).replace(/0$/, '')}{0-${sae.dSae - 1}}`,
      'NOT_FOUND',
    );
}
