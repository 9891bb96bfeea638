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
import { sumRowsByIndex } from './row-sum-ops.js';

/** Name of the scalar graph input carrying the current L1 coefficient λ (the trainer applies warm-up). */
export const L1_INPUT = 'l1_coefficient';

/** Scalar output: the most latents firing for any one vector of the batch. */
export const MAX_ACTIVE_OUTPUT = 'max_active';
/** Sparse kernel only: int64 [1] input, how many latents per vector it picks (k_cap < m). */
export const K_CAP_INPUT = 'k_cap';
/**
 * Sparse kernel only: scalar output, 1 when every vector had fewer than k_cap firing latents (every
 * pick list ends in a zero), so nothing was cut off and the step is exact; 0 when some vector may have
 * had more, and the step must be run again with the dense kernel (its outputs discarded).
 */
export const COMPLETE_OUTPUT = 'complete';

/**
 * How the firing latents meet the decoder. `dense` multiplies the whole [B, m] activation matrix by
 * W_dec and dRecon by W_decᵀ (the reference; right while many latents fire, as early in training).
 * `sparse` picks, per vector, the k_cap largest activations (every nonzero one, padded with zeros,
 * checked by COMPLETE_OUTPUT) and gathers their decoder rows, so the decoder forward and dL/d(acts)
 * cost O(B·k_cap·d) instead of O(B·m·d). Both give the same loss and gradients up to summation order.
 */
export type ReluL1Kernel = 'dense' | 'sparse';

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
export function reluL1Pass(g: GraphBuilder, shape: SaeShape, kernel: ReluL1Kernel = 'dense'): ArchPass {
  if (kernel === 'sparse') return reluL1SparsePass(g, shape);
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
  maxActive(g, firing);
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
    extraOutputs: [
      { name: penalty, type: 'float32', shape: [] },
      { name: MAX_ACTIVE_OUTPUT, type: 'float32', shape: [] },
    ],
    unitDecoder: false,
  };
}

/** max over vectors of the number of firing latents, from a 0/1 firing matrix [B, m]; named MAX_ACTIVE_OUTPUT. */
function maxActive(g: GraphBuilder, firing: string): string {
  const perVector = g.op('ReduceSum', [firing, g.constInt64([1], [1], 'axis1')], { keepdims: 0 });
  return g.op('ReduceMax', [perVector], { keepdims: 0 }, MAX_ACTIVE_OUTPUT);
}

/**
 * The sparse kernel (see ReluL1Kernel). Only the encoder forward stays a dense MatMul (and the ReLU and
 * TopK over its [B, m] output); everything after it works on the k_cap picks per vector: the decoder
 * forward and dL/d(acts) through the gathered decoder rows, and both weight gradients
 * (dW_enc = centredᵀ·dPre, dW_dec = actsᵀ·dRecon, with dPre and acts zero off the picks) as sums of
 * B·k_cap weighted rows per latent, in a fixed order and in parallel (row-sum-ops.ts), O(B·k_cap·d)
 * instead of O(B·m·d). The firing counts come from the picks, so no [B, m] pass beyond ReLU and TopK is
 * needed for them; k_cap comes from the trainer (the last step's max_active plus a margin) because
 * counting the nonzeros of each row in the graph would cost a full [B, m] pass every step.
 */
function reluL1SparsePass(g: GraphBuilder, shape: SaeShape): ArchPass {
  const e = encodeInputs(g, shape, SAE_PARAMS);
  const lambda = g.input(L1_INPUT, 'float32', []);
  const kCap = g.input(K_CAP_INPUT, 'int64', [1]);
  const acts = g.op('Relu', [e.pre]);
  const axis1 = g.constInt64([1], [1], 'axis1');
  const axis2 = g.constInt64([2], [1], 'axis2');
  const rows0 = g.constInt64([0], [1], 'axis0');
  const flat = g.constInt64([-1], [1], 'flat');
  const zero = g.constFloat([0], [], 'zero_f');
  const [values, indices] = g.opMulti('TopK', [acts, kCap], 2, { axis: 1, largest: 1, sorted: 0 });
  const firing = g.op('Greater', [values, zero]);
  const positive = g.op('Cast', [firing], { to: 1 });
  // every row's smallest pick is 0 exactly when no row had k_cap or more firing latents
  g.op(
    'Cast',
    [
      g.op('Equal', [
        g.op('ReduceMax', [g.op('ReduceMin', [values, axis1], { keepdims: 0 })], { keepdims: 0 }),
        zero,
      ]),
    ],
    { to: 1 },
    COMPLETE_OUTPUT,
  );
  g.op(
    'ReduceMax',
    [g.op('ReduceSum', [positive, axis1], { keepdims: 0 })],
    { keepdims: 0 },
    MAX_ACTIVE_OUTPUT,
  );
  // [B, 1, k]·[B, k, d] → [B, 1, d]
  const rows = g.op('Gather', ['W_dec', indices], { axis: 0 });
  const decoded = g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [values, axis1]), rows]), axis1]);
  const error = g.op('Sub', [g.op('Add', [decoded, 'b_dec']), e.x]);
  const mse = g.op('Div', [g.op('ReduceSum', [g.op('Mul', [error, error])], { keepdims: 0 }), e.batch]);
  const dRecon = g.op('Div', [g.op('Mul', [error, g.constFloat([2], [], 'two')]), e.batch]);
  const norms = g.op('ReduceL2', ['W_dec', axis1], { keepdims: 0 });
  const pickedNorms = g.op('Gather', [norms, indices], { axis: 0 });
  const penalty = g.op(
    'Div',
    [g.op('ReduceSum', [g.op('Mul', [values, pickedNorms])], { keepdims: 0 }), e.batch],
    {},
    'sparsity_loss',
  );
  const loss = g.op('Add', [mse, g.op('Mul', [lambda, penalty])], {}, 'loss');
  const scale = g.op('Div', [lambda, e.batch]);
  // dL/d(picked act) = dRecon_b·W_dec[idx] + s·n_idx, masked to zero where the pick is padding (act 0,
  // ReLU off): [B, k, d]·[B, d, 1] → [B, k]
  const dPicked = g.op('Mul', [
    g.op('Add', [
      g.op('Squeeze', [g.op('MatMul', [rows, g.op('Unsqueeze', [dRecon, axis2])]), axis2]),
      g.op('Mul', [scale, pickedNorms]),
    ]),
    positive,
  ]);
  // per-latent sums over the batch from the picks; ScatterElements adds in index order on one thread,
  // so they are deterministic (see row-sum-ops.ts), and at B·k_cap values they are cheap
  const zerosM = g.op('ConstantOfShape', [g.constInt64([shape.m], [1], 'm')]);
  const flatIndices = g.op('Reshape', [indices, flat]);
  const perLatent = (v: string) =>
    g.op('ScatterElements', [zerosM, flatIndices, g.op('Reshape', [v, flat])], { axis: 0, reduction: 'add' });
  const bEnc = perLatent(dPicked);
  const safeNorms = g.op('Max', [norms, g.constFloat([1e-12], [], 'norm_floor')]);
  const perRow = g.op('Div', [g.op('Mul', [scale, perLatent(values)]), safeNorms]);
  // padding picks (act 0, ReLU off) would add exactly 0 to both sums: they are left out, which at an L0
  // well under k_cap is most of the picks
  const pickedRows = (weights: string, vectors: string) =>
    sumRowsByIndex(g, shape, { indices: flatIndices, weights, vectors, perVector: kCap, keep: firing });
  const dDec = g.op('Add', [
    pickedRows(values, dRecon),
    g.op('Mul', [g.op('Unsqueeze', [perRow, axis1]), 'W_dec']),
  ]);
  const dEnc = g.op('Transpose', [pickedRows(dPicked, e.centred)], { perm: [1, 0] });
  const direct = g.op('ReduceSum', [dRecon, rows0], { keepdims: 0 });
  return {
    params: SAE_PARAMS,
    loss,
    mse,
    grads: {
      W_enc: dEnc,
      b_enc: bEnc,
      // b_dec enters twice: added to x̂ directly, and subtracted from x before the encoder
      b_dec: g.op('Sub', [direct, g.op('MatMul', ['W_enc', bEnc])]),
      W_dec: dDec,
    },
    firing: { total: g.op('ReduceSum', [positive], { keepdims: 0 }), perLatent: perLatent(positive) },
    batch: e.batch,
    extraOutputs: [
      { name: penalty, type: 'float32', shape: [] },
      { name: MAX_ACTIVE_OUTPUT, type: 'float32', shape: [] },
      { name: COMPLETE_OUTPUT, type: 'float32', shape: [] },
    ],
    unitDecoder: false,
  };
}
