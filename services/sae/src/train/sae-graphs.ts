import { GraphBuilder } from '@loupe/common';
import { type AdamSettings, DEFAULT_ADAM } from './adam-ops.js';
import type { ArchPass } from './arch-pass.js';
import { adamOutputs, firingOutputs, gradientOutputs, type SaeShape } from './dense-sae-ops.js';

/** Builds one architecture's forward and backward pass into a graph. */
export type PassBuilder = (g: GraphBuilder, shape: SaeShape) => ArchPass;

/** Loss, `mse`, the architecture's extras and the raw `grad_<p>` of every parameter, for gradient checks. */
export function buildGradientGraph(shape: SaeShape, pass: PassBuilder, name: string): Uint8Array {
  const g = new GraphBuilder();
  const a = pass(g, shape);
  g.output(a.loss, 'float32', []);
  g.op('Identity', [a.mse], {}, 'mse');
  g.output('mse', 'float32', []);
  gradientOutputs(g, shape, a.params, a.grads);
  for (const extra of a.extraOutputs) g.output(extra.name, extra.type, extra.shape);
  return g.encode({ graphName: `${name}_gradients`, opset: 20 });
}

/**
 * One training step: forward, backward, Adam, and (where the architecture wants it) decoder rows held
 * at unit norm. Outputs `new_*` parameters and moments, loss, mse, l0, latent_counts and the
 * architecture's extras. As for TopK, state is fed in and out so one session serves every step.
 */
export function buildStepGraph(
  shape: SaeShape,
  pass: PassBuilder,
  name: string,
  adam: AdamSettings = DEFAULT_ADAM,
): Uint8Array {
  const g = new GraphBuilder();
  const a = pass(g, shape);
  adamOutputs(g, shape, a.params, a.grads, { adam, unitDecoder: a.unitDecoder });
  g.output(a.loss, 'float32', []);
  g.op('Identity', [a.mse], {}, 'mse');
  g.output('mse', 'float32', []);
  firingOutputs(g, shape, a.firing, a.batch);
  for (const extra of a.extraOutputs) g.output(extra.name, extra.type, extra.shape);
  return g.encode({ graphName: `${name}_step`, opset: 20 });
}
