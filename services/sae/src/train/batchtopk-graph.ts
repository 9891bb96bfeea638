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
export function batchTopKPass(g: GraphBuilder, shape: SaeShape & { k: number }): ArchPass {
  const e = encodeInputs(g, shape, SAE_PARAMS);
  const relu = g.op('Relu', [e.pre]);
  const flat = g.op('Reshape', [relu, g.constInt64([-1], [1], 'flat')]);
  const rowsCount = g.op('Gather', [g.op('Shape', [e.x]), g.constInt64([0], [1], 'first_dim')]);
  const kept = g.op('Mul', [rowsCount, g.constInt64([shape.k], [1], 'k')]);
  const [values, indices] = g.opMulti('TopK', [flat, kept], 2, { axis: 0, largest: 1, sorted: 0 });
  const zeros = g.op('ConstantOfShape', [g.op('Shape', [flat])]);
  const acts = g.op('Reshape', [
    g.op('ScatterElements', [zeros, indices, values], { axis: 0 }),
    g.op('Shape', [e.pre]),
  ]);
  const dec = decodeActivations(g, e, acts);
  g.op('Identity', [dec.mse], {}, 'loss');
  // kept zeros (fewer than k·B positive activations) add nothing and, masked here, get no gradient
  const firing = positiveMask(g, acts);
  const dPre = g.op('Mul', [activationGradient(g, dec.dRecon), firing]);
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
    grads: { ...encoderGradients(g, e, dec.dRecon, dPre), W_dec: decoderGradient(g, acts, dec.dRecon) },
    firing,
    batch: e.batch,
    extraOutputs: [{ name: MIN_KEPT_OUTPUT, type: 'float32', shape: [] }],
    unitDecoder: true,
  };
}
