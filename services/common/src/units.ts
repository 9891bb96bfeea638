import { UserInputError } from './errors.js';

/**
 * Unit ids (DESIGN.md): `model/hook/index` for a neuron (e.g. gpt2/blocks.6.mlp.hook_post/1234) and
 * `model/sae-id/index` for an SAE feature (e.g. gpt2/res-6-topk/17). The middle part tells them apart:
 * neurons live only on `blocks.{L}.mlp.hook_post`, so a middle part of exactly that shape is a hook and
 * anything else is an SAE id. Hook-looking names that are not neuron hooks (blocks.6.hook_resid_pre, the
 * id SAELens gives many SAEs) are therefore SAE ids. Every service parses ids here and nowhere else.
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

export const NEURON_EXAMPLE = 'gpt2/blocks.6.mlp.hook_post/1234';
const EXAMPLES = `${NEURON_EXAMPLE} (a neuron) or gpt2/my-sae/17 (a feature of SAE my-sae)`;

/**
 * A neuron id of a model for messages: neuron 0 of its middle layer, the layer the first-run demo
 * captures (so the id has records there), e.g. loupe-tiny/blocks.1.mlp.hook_post/0.
 */
export function exampleNeuronId(model: { name: string; nLayer: number }): string {
  return `${model.name}/blocks.${Math.floor(model.nLayer / 2)}.mlp.hook_post/0`;
}

/** Example unit ids of a model for messages, as parseUnitId's `examples`. */
export function unitExamples(model: { name: string; nLayer: number }): string {
  return `${exampleNeuronId(model)} (a neuron) or ${model.name}/my-sae/17 (a feature of SAE my-sae)`;
}
const NEURON_HOOK = /^blocks\.(0|[1-9]\d{0,3})\.mlp\.hook_post$/;
const INDEX = /^(0|[1-9]\d{0,8})$/;
/** The SAE service's rule for SAE ids. */
export const SAE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;

export function featureId(model: string, saeId: string, index: number): string {
  return `${model}/${saeId}/${index}`;
}

export function formatUnitId(ref: UnitRef): string {
  return `${ref.model}/${ref.kind === 'neuron' ? ref.hook : ref.saeId}/${ref.index}`;
}

/**
 * Parses the id's shape; whether the unit exists is for the service that owns it to say. `examples`
 * are the ids a malformed one's message suggests (a service that knows the served model passes its own:
 * unitExamples).
 */
export function parseUnitId(id: string, examples = EXAMPLES): UnitRef {
  const parts = id.split('/');
  const [model, middle, index] = parts;
  if (parts.length !== 3 || !model || !middle || !INDEX.test(index ?? ''))
    throw new UserInputError(
      `unit id "${id}" must be model/hook/index or model/sae-id/index, e.g. ${examples}`,
    );
  const layer = NEURON_HOOK.exec(middle);
  if (layer) return { kind: 'neuron', model, hook: middle, layer: Number(layer[1]), index: Number(index) };
  if (!SAE_ID_PATTERN.test(middle))
    throw new UserInputError(
      `unit id "${id}": "${middle}" is neither a neuron hook (blocks.{L}.mlp.hook_post) nor an SAE id ` +
        '(1-100 of A-Z a-z 0-9 . _ : -)',
    );
  return { kind: 'feature', model, saeId: middle, index: Number(index) };
}
