import { UserInputError } from '@loupe/common';
import type { SaeLensArchitecture } from './saelens-architecture.js';

/** SAELens' `jumprelu`: a pre-activation passes where it exceeds its latent's `threshold` weight θ. */
export const saeLensJumpRelu: SaeLensArchitecture = {
  extraWeights: ['threshold'],
  readFields: () => ({}),
  writeFields: () => ({}),
  checkFields: () => undefined,
  activate: (sae, pre, acts) => {
    const threshold = sae.weights.threshold!;
    for (let i = 0; i < acts.length; i++) acts[i] = pre[i] > threshold[i] ? Math.max(0, pre[i]) : 0;
  },
  activationGraph: (g, sae, pre) => {
    const { threshold } = sae.weights;
    if (!threshold) throw new UserInputError('a jumprelu SAE needs its threshold weights');
    const theta = g.inlineWeight('threshold', [sae.config.dSae], threshold);
    const open = g.op('Cast', [g.op('Greater', [pre, theta])], { to: 1 });
    return g.op('Mul', [g.op('Relu', [pre]), open], {}, 'acts');
  },
  random: (rng, dSae) => ({ fields: {}, weights: { threshold: rng.normalFloat32(dSae, 0.3, 0.1) } }),
};
