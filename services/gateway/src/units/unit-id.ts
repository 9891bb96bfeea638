import { type FeatureRef, featureId, formatUnitId, LoupeError, type NeuronRef } from '@loupe/common';

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
