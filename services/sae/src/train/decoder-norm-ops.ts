import type { GraphBuilder } from '@loupe/common';

/**
 * Removes from each row of the decoder gradient its component along that decoder row. With rows held
 * at unit norm, that component only changes a row's length, which the renormalisation after the step
 * undoes anyway; left in, it would still feed Adam's moments and distort the step size (sparsify does
 * the same). Assumes the rows of `decoder` are unit vectors, which `normaliseRows` guarantees.
 */
export function removeParallelComponent(g: GraphBuilder, grad: string, decoder: string): string {
  const axes = g.constInt64([1], [1], 'axis1');
  const along = g.op('ReduceSum', [g.op('Mul', [grad, decoder]), axes], { keepdims: 1 });
  return g.op('Sub', [grad, g.op('Mul', [along, decoder])]);
}

/** Scales every row to unit L2 norm; the floor keeps an all-zero row finite instead of NaN. */
export function normaliseRows(g: GraphBuilder, matrix: string, outputName?: string): string {
  const axes = g.constInt64([1], [1], 'axis1');
  const norm = g.op('ReduceL2', [matrix, axes], { keepdims: 1 });
  const floor = g.constFloat([1e-12], [], 'norm_floor');
  return g.op('Div', [matrix, g.op('Max', [norm, floor])], {}, outputName);
}
