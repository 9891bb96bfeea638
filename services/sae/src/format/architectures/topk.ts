import { UserInputError } from '@loupe/common';
import type { SaeLensArchitecture } from './saelens-architecture.js';

type Json = Record<string, unknown>;

/** SAELens' `topk`: the k largest pre-activations per row, ReLU'd; k is a cfg.json field. */
export const saeLensTopK: SaeLensArchitecture = {
  extraWeights: [],
  // v6 writes k at the top; older SAELens kept it in activation_fn_kwargs
  readFields: (cfg, dSae, bad) => {
    const kwargs = cfg.activation_fn_kwargs;
    const fromKwargs = typeof kwargs === 'object' && kwargs !== null ? (kwargs as Json).k : undefined;
    const raw = cfg.k ?? fromKwargs;
    if (!Number.isSafeInteger(raw) || (raw as number) < 1 || (raw as number) > dSae)
      throw bad(
        `topk needs "k" (or activation_fn_kwargs.k) between 1 and d_sae = ${dSae}, got ${JSON.stringify(raw)}`,
      );
    return { k: raw as number };
  },
  writeFields: (config) => ({ k: config.k }),
  checkFields: ({ k, dSae }) =>
    Number.isInteger(k) && k! >= 1 && k! <= dSae ? undefined : `topk SAE needs k in 1..${dSae}, got ${k}`,
  activate: (sae, pre, acts) => {
    for (const i of topIndices(pre, sae.config.k!)) acts[i] = Math.max(0, pre[i]);
  },
  activationGraph: (g, sae, pre) => {
    const { k } = sae.config;
    if (!k) throw new UserInputError('a topk SAE needs k in its config');
    // TopK of the pre-activations, then ReLU, as SAELens' TopK activation does; the kept values are
    // scattered back into a dense [rows, d_sae] matrix of zeros.
    const [values, indices] = g.opMulti('TopK', [pre, g.constInt64([k], [1], 'k')], 2, {
      axis: 1,
      largest: 1,
      sorted: 0,
    });
    const zeros = g.op('ConstantOfShape', [g.op('Shape', [pre])]);
    return g.op('ScatterElements', [zeros, indices, g.op('Relu', [values])], { axis: 1 }, 'acts');
  },
  random: (_rng, _dSae, k) => ({ fields: { k: k ?? 3 }, weights: {} }),
};

/** Indices of the k largest values; ties go to the lower index, as a stable sort would. */
function topIndices(values: Float64Array, k: number): number[] {
  const order = Array.from(values.keys());
  order.sort((a, b) => values[b] - values[a] || a - b);
  return order.slice(0, k);
}
