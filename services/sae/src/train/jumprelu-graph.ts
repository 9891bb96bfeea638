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
  type SaeParam,
  type SaeShape,
} from './dense-sae-ops.js';
import { warmStartActivations } from './topk-warm-start.js';

export const JUMPRELU_PARAMS: readonly SaeParam[] = [...SAE_PARAMS, 'threshold'];

/** Name of the scalar graph input carrying the current L0 coefficient λ (the trainer applies warm-up). */
export const L0_INPUT = 'l0_coefficient';

/** Rajamanoharan et al.'s bandwidth, chosen for activations normalised to unit mean squared norm. */
export const DEFAULT_BANDWIDTH = 0.001;

/**
 * JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead"), with a raw threshold θ per latent, as
 * dictionary_learning trains it. (Loupe first learnt log θ; Adam then moves θ by about θ·lr per step, so
 * from the paper's θ₀ = 0.001 the thresholds had barely moved after 500 steps and L0 stayed near 140.)
 *   f = pre·H(pre − θ), x̂ = f·W_dec + b_dec,
 *   loss = (1/B)·Σ_b ||x_b − x̂_b||² + λ·(1/B)·Σ_b Σ_i H(pre_bi − θ_i),  H(0) = 0.
 * The loss is piecewise constant in θ, so θ learns through straight-through pseudo-derivatives built
 * on the rectangle kernel K(u) = 1 for |u| < 1/2, else 0, with bandwidth ε (`bandwidth`):
 *   ∂f/∂pre := H(pre − θ)                  (the jump's delta is dropped)
 *   ∂f/∂θ   := −(θ/ε)·K((pre − θ)/ε)
 *   ∂H(pre − θ)/∂θ   := −(1/ε)·K((pre − θ)/ε)
 *   ∂H(pre − θ)/∂pre := 0                  (the L0 term reaches only θ, as in the paper's pseudocode)
 Hence, with g_bi = dL/df_bi = (dRecon·W_decᵀ)_bi,
 *   dL/dθ_i = −(1/ε)·Σ_b K((pre_bi − θ_i)/ε)·(θ_i·g_bi + λ/B).
 * Decoder rows are held at unit norm: the L0 penalty does not read them, so nothing else pins their scale.
 */
export function jumpReluPass(
  g: GraphBuilder,
  shape: SaeShape,
  bandwidth = DEFAULT_BANDWIDTH,
  /** latents per vector of a per-vector TopK warm start (see topk-warm-start.ts); none without */
  warmStartK?: number,
): ArchPass {
  const e = encodeInputs(g, shape, JUMPRELU_PARAMS);
  const lambda = g.input(L0_INPUT, 'float32', []);
  const theta = 'threshold';
  const shifted = g.op('Sub', [e.pre, theta]);
  const jump = g.op('Cast', [g.op('Greater', [e.pre, theta])], { to: 1 });
  let gate = jump;
  if (warmStartK !== undefined) {
    // while warming up, the gate is TopK's: reconstruction and encoder follow it, θ still learns
    const relu = g.op('Relu', [e.pre]);
    const warm = warmStartActivations(g, e.pre, relu, warmStartK, g.op('Mul', [e.pre, jump]));
    gate = g.op('Where', [warm.warm, positiveMask(g, warm.acts), jump]);
  }
  const acts = g.op('Mul', [e.pre, gate]);
  const dec = decodeActivations(g, e, acts);
  const sparsity = g.op('Div', [g.op('ReduceSum', [gate], { keepdims: 0 }), e.batch], {}, 'sparsity_loss');
  const loss = g.op('Add', [dec.mse, g.op('Mul', [lambda, sparsity])], {}, 'loss');
  const dActs = activationGradient(g, dec.dRecon);
  const dPre = g.op('Mul', [dActs, gate]);
  const halfWidth = g.constFloat([bandwidth / 2], [], 'half_bandwidth');
  const window = g.op('Cast', [g.op('Less', [g.op('Abs', [shifted]), halfWidth])], { to: 1 });
  const perEntry = g.op('Mul', [
    window,
    g.op('Add', [g.op('Mul', [theta, dActs]), g.op('Div', [lambda, e.batch])]),
  ]);
  const rows0 = g.constInt64([0], [1], 'axis0');
  const negInvWidth = g.constFloat([-1 / bandwidth], [], 'neg_inv_bandwidth');
  const dTheta = g.op('Mul', [negInvWidth, g.op('ReduceSum', [perEntry, rows0], { keepdims: 0 })]);
  return {
    params: JUMPRELU_PARAMS,
    loss,
    mse: dec.mse,
    grads: {
      ...encoderGradients(g, e, dec.dRecon, dPre),
      W_dec: decoderGradient(g, acts, dec.dRecon),
      threshold: dTheta,
    },
    firing: gate,
    batch: e.batch,
    extraOutputs: [{ name: sparsity, type: 'float32', shape: [] }],
    unitDecoder: true,
  };
}
