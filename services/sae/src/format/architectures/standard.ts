import type { SaeLensArchitecture } from './saelens-architecture.js';

/** SAELens' `standard`: ReLU of the pre-activations. */
export const saeLensStandard: SaeLensArchitecture = {
  extraWeights: [],
  readFields: () => ({}),
  writeFields: () => ({}),
  checkFields: () => undefined,
  activate: (_sae, pre, acts) => {
    for (let i = 0; i < acts.length; i++) acts[i] = Math.max(0, pre[i]);
  },
  activationGraph: (g, _sae, pre) => g.op('Relu', [pre], {}, 'acts'),
  random: () => ({ fields: {}, weights: {} }),
};
