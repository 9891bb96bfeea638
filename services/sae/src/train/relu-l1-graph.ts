import type { GraphBuilder } from '@loupe/common';
import type { ArchPass } from './arch-pass.js';
import {
  activationGradient,
  decodeActivations,
  decoderGradient,
  encodeInputs,
  encoderGradients,
  positiveMask,
  SAE_PARAMS,
  type SaeShape,
} from './dense-sae-ops.js';

/** Name of the scalar graph input carrying the current L1 coefficient λ (the trainer applies warm-up). */
export const L1_INPUT = 'l1_coefficient';

/**
 * ReLU SAE with an L1 penalty weighted by decoder row norms (Anthropic, "Towards Monosemanticity" and
 * the April 2024 update): f = ReLU((x − b_dec)·W_enc + b_enc), x̂ = f·W_dec + b_dec,
 * loss = (1/B)·Σ_b ||x_b − x̂_b||² + λ·(1/B)·Σ_b Σ_i f_bi·||W_dec[i]||.
 * Weighting by the row norm makes the penalty invariant to trading scale between f and W_dec, which is
 * why the decoder rows are left free rather than normalised.
 *
 * Gradients, with n_i = ||W_dec[i]|| and s = λ/B:
 *   dL/df_bi = (dRecon·W_decᵀ)_bi + s·n_i, masked by f_bi > 0 to get dL/dpre;
 *   dL/dW_dec[i] = (fᵀ·dRecon)_i + s·(Σ_b f_bi)·W_dec[i]/n_i.
 */
export function reluL1Pass(g: GraphBuilder, shape: SaeShape): ArchPass {
  const e = encodeInputs(g, shape, SAE_PARAMS);
  const lambda = g.input(L1_INPUT, 'float32', []);
  const acts = g.op('Relu', [e.pre]);
  const dec = decodeActivations(g, e, acts);
  const axis1 = g.constInt64([1], [1], 'axis1');
  const rows0 = g.constInt64([0], [1], 'axis0');
  const norms = g.op('ReduceL2', ['W_dec', axis1], { keepdims: 0 });
  // the unscaled penalty (1/B)·Σ f·n, reported separately so the schedule's effect can be seen
  const penalty = g.op(
    'Div',
    [g.op('ReduceSum', [g.op('MatMul', [acts, norms])], { keepdims: 0 }), e.batch],
    {},
    'sparsity_loss',
  );
  const loss = g.op('Add', [dec.mse, g.op('Mul', [lambda, penalty])], {}, 'loss');
  const scale = g.op('Div', [lambda, e.batch]);
  const dActs = g.op('Add', [activationGradient(g, dec.dRecon), g.op('Mul', [scale, norms])]);
  const firing = positiveMask(g, e.pre);
  const dPre = g.op('Mul', [dActs, firing]);
  // the floor keeps a row that Adam drove to exactly zero finite; its penalty gradient is then zero
  const safeNorms = g.op('Max', [norms, g.constFloat([1e-12], [], 'norm_floor')]);
  const perRow = g.op('Div', [
    g.op('Mul', [scale, g.op('ReduceSum', [acts, rows0], { keepdims: 0 })]),
    safeNorms,
  ]);
  const dDec = g.op('Add', [
    decoderGradient(g, acts, dec.dRecon),
    g.op('Mul', [g.op('Unsqueeze', [perRow, axis1]), 'W_dec']),
  ]);
  return {
    params: SAE_PARAMS,
    loss,
    mse: dec.mse,
    grads: { ...encoderGradients(g, e, dec.dRecon, dPre), W_dec: dDec },
    firing,
    batch: e.batch,
    extraOutputs: [{ name: penalty, type: 'float32', shape: [] }],
    unitDecoder: false,
  };
}
