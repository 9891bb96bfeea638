import { parseHook, UserInputError } from '@loupe/common';

/**
 * The layer of a neuron named by hook and index, checked against the model: neurons live on
 * blocks.{L}.mlp.hook_post only, and have indices 0 to d_mlp - 1.
 */
export function neuronLayer(
  request: { hook: string; neuron: number },
  dims: { nLayer: number; dMlp: number },
  what = 'neuron records',
): number {
  const ref = parseHook(request.hook, dims.nLayer);
  if (ref.kind !== 'block' || ref.hook !== 'mlp.hook_post') {
    throw new UserInputError(`${what} exist for blocks.{L}.mlp.hook_post only, not "${request.hook}"`);
  }
  if (!Number.isInteger(request.neuron) || request.neuron < 0 || request.neuron >= dims.dMlp) {
    throw new UserInputError(
      `neuron ${request.neuron} does not exist: ${request.hook} has neurons 0-${dims.dMlp - 1}`,
    );
  }
  return ref.layer;
}
