import type { GraphBuilder } from '@loupe/common';
import type { ArchPass } from './arch-pass.js';
import {
  activationGradient,
  type Decoded,
  decodeActivations,
  decoderGradient,
  type Encoded,
  encodeInputs,
  encoderGradients,
  positiveMask,
  SAE_PARAMS,
  type SaeShape,
} from './dense-sae-ops.js';
import { AUXK_INPUTS, type AuxKOptions, DEFAULT_AUXK_COEFFICIENT } from './topk-graph.js';
import { warmStartActivations } from './topk-warm-start.js';

/** Name of the scalar output: the smallest positive activation kept in this batch. */
export const MIN_KEPT_OUTPUT = 'min_kept';

/**
 * BatchTopK SAE (Bussmann, Leask & Nanda 2024): the k·B largest ReLU activations over the whole batch are
 * kept, instead of k per vector, so busy vectors can use more latents and quiet ones fewer while the
 * mean L0 stays k. Decoder rows are unit norm as for TopK. Gradients flow through the kept, positive
 * activations only, exactly as in TopK; the selection itself is piecewise constant.
 *
 * Batch-level selection makes the encoding depend on the rest of the batch, so at inference a threshold
 * θ replaces it: f = pre·[pre > θ]. The graph outputs the smallest kept positive activation
 * (`min_kept`, +∞ if nothing fired) for the trainer's running estimate of θ.
 */
export function batchTopKPass(
  g: GraphBuilder,
  shape: SaeShape & { k: number },
  auxk?: AuxKOptions,
  /** with a warm-start input (see topk-warm-start.ts): per-vector TopK while it is 1 */
  warmStart = false,
  /**
   * Matryoshka (Bussmann et al. 2025): the widths of the nested dictionaries below the full one. Each
   * prefix of latents [0, p) must reconstruct x on its own, and the reconstruction term becomes the
   * mean over the prefixes and the full dictionary of (1/B)·Σ_b ||x_b − x̂_b^(p)||². Selection is
   * BatchTopK's, over all latents.
   */
  prefixes: readonly number[] = [],
): ArchPass {
  const e = encodeInputs(g, shape, SAE_PARAMS);
  const relu = g.op('Relu', [e.pre]);
  const flat = g.op('Reshape', [relu, g.constInt64([-1], [1], 'flat')]);
  const rowsCount = g.op('Gather', [g.op('Shape', [e.x]), g.constInt64([0], [1], 'first_dim')]);
  const kept = g.op('Mul', [rowsCount, g.constInt64([shape.k], [1], 'k')]);
  const [values, indices] = g.opMulti('TopK', [flat, kept], 2, { axis: 0, largest: 1, sorted: 0 });
  const zeros = g.op('ConstantOfShape', [g.op('Shape', [flat])]);
  const batchActs = g.op('Reshape', [
    g.op('ScatterElements', [zeros, indices, values], { axis: 0 }),
    g.op('Shape', [e.pre]),
  ]);
  const acts = warmStart ? warmStartActivations(g, e.pre, relu, shape.k, batchActs).acts : batchActs;
  const dec = decodeActivations(g, e, acts);
  // kept zeros (fewer than k·B positive activations) add nothing and, masked here, get no gradient
  const firing = positiveMask(g, acts);
  let objective = dec.mse;
  let dActs = activationGradient(g, dec.dRecon);
  let wDecGrad = decoderGradient(g, acts, dec.dRecon);
  let dReconSum = dec.dRecon;
  if (prefixes.length > 0) {
    for (const width of prefixes) {
      const mask = g.constFloat(
        Array.from({ length: shape.m }, (_, i) => (i < width ? 1 : 0)),
        [shape.m],
        'prefix_mask',
      );
      const inner = g.op('Mul', [acts, mask]);
      const part = decodeActivations(g, e, inner);
      objective = g.op('Add', [objective, part.mse]);
      dActs = g.op('Add', [dActs, g.op('Mul', [activationGradient(g, part.dRecon), mask])]);
      wDecGrad = g.op('Add', [wDecGrad, decoderGradient(g, inner, part.dRecon)]);
      dReconSum = g.op('Add', [dReconSum, part.dRecon]);
    }
    const mean = g.constFloat([1 / (prefixes.length + 1)], [], 'prefix_mean');
    objective = g.op('Mul', [objective, mean]);
    dActs = g.op('Mul', [dActs, mean]);
    wDecGrad = g.op('Mul', [wDecGrad, mean]);
    dReconSum = g.op('Mul', [dReconSum, mean]);
  }
  let dPre = g.op('Mul', [dActs, firing]);
  const extraOutputs: ArchPass['extraOutputs'] = [{ name: MIN_KEPT_OUTPUT, type: 'float32', shape: [] }];
  if (prefixes.length > 0) {
    g.op('Identity', [objective], {}, 'prefix_loss');
    extraOutputs.push({ name: 'prefix_loss', type: 'float32', shape: [] });
  }
  if (auxk) {
    const aux = auxKTerm(g, shape, e, relu, dec, auxk);
    g.op('Add', [objective, aux.weighted], {}, 'loss');
    dPre = g.op('Add', [dPre, aux.dPre]);
    wDecGrad = g.op('Add', [wDecGrad, aux.dDec]);
    extraOutputs.push({ name: 'aux_loss', type: 'float32', shape: [] });
  } else {
    g.op('Identity', [objective], {}, 'loss');
  }
  const inf = g.constFloat([Number.POSITIVE_INFINITY], [], 'inf');
  g.op(
    'ReduceMin',
    [g.op('Where', [g.op('Greater', [values, g.constFloat([0], [], 'zero_f')]), values, inf])],
    { keepdims: 0 },
    MIN_KEPT_OUTPUT,
  );
  return {
    params: SAE_PARAMS,
    loss: 'loss',
    mse: dec.mse,
    grads: { ...encoderGradients(g, e, dReconSum, dPre), W_dec: wDecGrad },
    firing,
    batch: e.batch,
    extraOutputs,
    unitDecoder: true,
  };
}

/**
 * AuxK as for TopK (see AuxKOptions in topk-graph.ts: same inputs, normalisation and stop-gradient on
 * e), with dense [B, m] activations like the rest of this pass: the k_aux largest ReLU pre-activations
 * of dead latents per vector reconstruct e = x − x̂. Returns the weighted term α·s·||e − ê||²/B, its
 * contribution to dL/d(pre) and to dL/dW_dec, and names `aux_loss` (sparsify's normalised figure).
 */
function auxKTerm(
  g: GraphBuilder,
  shape: SaeShape,
  e: Encoded,
  relu: string,
  dec: Decoded,
  options: AuxKOptions,
): { weighted: string; dPre: string; dDec: string } {
  const dead = g.input(AUXK_INPUTS.deadMask, 'float32', [shape.m]);
  const kAux = g.input(AUXK_INPUTS.kAux, 'int64', [1]);
  const scale = g.input(AUXK_INPUTS.scale, 'float32', []);
  const coefficient = options.coefficient ?? DEFAULT_AUXK_COEFFICIENT;
  const [values, indices] = g.opMulti('TopK', [g.op('Mul', [relu, dead]), kAux], 2, {
    axis: 1,
    largest: 1,
    sorted: 0,
  });
  const auxActs = g.op(
    'ScatterElements',
    [g.op('ConstantOfShape', [g.op('Shape', [e.pre])]), indices, values],
    {
      axis: 1,
    },
  );
  // dec.error is x̂ − x, so ê − e = ê + (x̂ − x)
  const auxError = g.op('Add', [g.op('MatMul', [auxActs, 'W_dec']), dec.error]);
  const squared = g.op('ReduceSum', [g.op('Mul', [auxError, auxError])], { keepdims: 0 });
  const weighted = g.op('Div', [
    g.op('Mul', [g.op('Mul', [squared, scale]), g.constFloat([coefficient], [], 'auxk_coefficient')]),
    e.batch,
  ]);
  const mean = g.op('ReduceMean', [e.x, g.constInt64([0], [1], 'aux_axis0')], { keepdims: 1 });
  const spread = g.op('Sub', [e.x, mean]);
  const variance = g.op('Max', [
    g.op('ReduceSum', [g.op('Mul', [spread, spread])], { keepdims: 0 }),
    g.constFloat([1e-30], [], 'tiny'),
  ]);
  g.op('Div', [g.op('Mul', [squared, scale]), variance], {}, 'aux_loss');
  const factor = g.op('Div', [g.op('Mul', [scale, g.constFloat([2 * coefficient], [], 'two_aux')]), e.batch]);
  const dHat = g.op('Mul', [auxError, factor]);
  return {
    weighted,
    dPre: g.op('Mul', [activationGradient(g, dHat), positiveMask(g, auxActs)]),
    dDec: decoderGradient(g, auxActs, dHat),
  };
}
