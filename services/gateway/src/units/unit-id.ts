import { LoupeError, UserInputError } from '@loupe/common';

/**
 * Unit ids: `model/hook/index` for a neuron (e.g. gpt2/blocks.6.mlp.hook_post/1234) and
 * `model/sae-id/index` for an SAE feature (e.g. gpt2/res-6-topk/17). The middle part tells them apart:
 * neurons live only on `blocks.{L}.mlp.hook_post`, so a middle part of exactly that shape is a hook and
 * anything else is an SAE id (the SAE service is asked whether it exists). Hook-looking names that are
 * not neuron hooks (blocks.6.hook_resid_pre, the id SAELens gives many SAEs) are therefore SAE ids.
 */
export interface NeuronRef {
  kind: 'neuron';
  model: string;
  hook: string;
  layer: number;
  index: number;
}

export interface FeatureRef {
  kind: 'feature';
  model: string;
  saeId: string;
  index: number;
}

export type UnitRef = NeuronRef | FeatureRef;

const EXAMPLES = 'gpt2/blocks.6.mlp.hook_post/1234 (a neuron) or gpt2/my-sae/17 (a feature of SAE my-sae)';
export const NEURON_EXAMPLE = 'gpt2/blocks.6.mlp.hook_post/1234';
const NEURON_HOOK = /^blocks\.(0|[1-9]\d{0,3})\.mlp\.hook_post$/;
/** The SAE service's own rule for SAE ids. */
const SAE_ID = /^[A-Za-z0-9._:-]{1,100}$/;

export function formatUnitId(ref: UnitRef): string {
  return `${ref.model}/${ref.kind === 'neuron' ? ref.hook : ref.saeId}/${ref.index}`;
}

export function featureId(model: string, saeId: string, index: number): string {
  return `${model}/${saeId}/${index}`;
}

/** Parses the id's shape; whether the unit exists is checked against ModelInfo or GetSae later. */
export function parseUnitId(id: string): UnitRef {
  const parts = id.split('/');
  const [model, middle, index] = parts;
  if (parts.length !== 3 || !model || !middle || !/^(0|[1-9]\d{0,8})$/.test(index))
    throw new UserInputError(
      `unit id "${id}" must be model/hook/index or model/sae-id/index, e.g. ${EXAMPLES}`,
    );
  const layer = NEURON_HOOK.exec(middle);
  if (layer) return { kind: 'neuron', model, hook: middle, layer: Number(layer[1]), index: Number(index) };
  if (!SAE_ID.test(middle))
    throw new UserInputError(
      `unit id "${id}": "${middle}" is neither a neuron hook (blocks.{L}.mlp.hook_post) nor an SAE id ` +
        '(1-100 of A-Z a-z 0-9 . _ : -)',
    );
  return { kind: 'feature', model, saeId: middle, index: Number(index) };
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
