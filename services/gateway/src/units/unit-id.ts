import { LoupeError, UserInputError } from '@loupe/common';

/**
 * Unit ids: `model/hook/index` for a neuron (e.g. gpt2/blocks.6.mlp.hook_post/1234). SAE features
 * will be `model/sae-id/index`; the middle part tells them apart (a hook name vs. an SAE id).
 */
export interface NeuronRef {
  model: string;
  hook: string;
  layer: number;
  index: number;
}

const EXAMPLE = 'gpt2/blocks.6.mlp.hook_post/1234';
const NEURON_HOOK = /^blocks\.(0|[1-9]\d{0,3})\.mlp\.hook_post$/;

export function formatUnitId(ref: { model: string; hook: string; index: number }): string {
  return `${ref.model}/${ref.hook}/${ref.index}`;
}

/** Parses the id's shape; whether the model has that neuron is checked against ModelInfo later. */
export function parseUnitId(id: string): NeuronRef {
  const parts = id.split('/');
  const [model, hook, index] = parts;
  if (parts.length !== 3 || !model || !hook || !/^(0|[1-9]\d{0,8})$/.test(index))
    throw new UserInputError(`unit id "${id}" must be model/hook/index, e.g. ${EXAMPLE}`);
  const layer = NEURON_HOOK.exec(hook);
  if (!layer)
    throw new LoupeError(
      `unknown unit "${id}": neurons live on blocks.{L}.mlp.hook_post (e.g. ${EXAMPLE}); SAE features are not served yet`,
      'NOT_FOUND',
    );
  return { model, hook, layer: Number(layer[1]), index: Number(index) };
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
