import type { GraphBuilder } from '@loupe/common';
import { type AdamSettings, adamStep, adamUpdate } from './adam-ops.js';
import { normaliseRows, removeParallelComponent } from './decoder-norm-ops.js';

/**
 * Graph pieces shared by the architectures that materialise a dense [B, m] activation matrix (ReLU-L1,
 * BatchTopK, JumpReLU). They differ only in how activations come from pre-activations and in their
 * sparsity term; encoder, decoder, reconstruction loss, the gradient plumbing and Adam are common.
 */

/** Parameters of the plain SAEs; JumpReLU appends `threshold`. */
export const SAE_PARAMS = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
export type SaeParam = (typeof SAE_PARAMS)[number] | 'threshold';

/** One array per parameter: the four every architecture has, plus JumpReLU's threshold. */
export type SaeArrays<T> = Record<(typeof SAE_PARAMS)[number], T> & { threshold?: T };

/** Input width d and latent width m. */
export interface SaeShape {
  d: number;
  m: number;
}

export function saeParamShape(shape: SaeShape, name: SaeParam): number[] {
  switch (name) {
    case 'W_enc':
      return [shape.d, shape.m];
    case 'b_enc':
    case 'threshold':
      return [shape.m];
    case 'W_dec':
      return [shape.m, shape.d];
    case 'b_dec':
      return [shape.d];
  }
}

/** Graph I/O names; the same convention as the TopK graphs so tools can treat every step alike. */
export const saeIo = {
  moment: (kind: 'm' | 'v', p: SaeParam) => `${kind}_${p}`,
  updated: (p: SaeParam) => `new_${p}`,
  updatedMoment: (kind: 'm' | 'v', p: SaeParam) => `new_${kind}_${p}`,
  grad: (p: SaeParam) => `grad_${p}`,
};

export interface Encoded {
  x: string;
  /** batch size as a float scalar */
  batch: string;
  centred: string;
  pre: string;
}

/** Declares x and the parameters as inputs and computes pre = (x − b_dec)·W_enc + b_enc. */
export function encodeInputs(g: GraphBuilder, shape: SaeShape, params: readonly SaeParam[]): Encoded {
  const x = g.input('x', 'float32', ['batch', shape.d]);
  for (const p of params) g.input(p, 'float32', saeParamShape(shape, p));
  const batch = g.op('Cast', [g.op('Gather', [g.op('Shape', [x]), g.constInt64([0], [], 'zero')])], {
    to: 1,
  });
  const centred = g.op('Sub', [x, 'b_dec']);
  const pre = g.op('Add', [g.op('MatMul', [centred, 'W_enc']), 'b_enc']);
  return { x, batch, centred, pre };
}

export interface Decoded {
  /** x̂ − x */
  error: string;
  /** (1/B)·Σ_b ||x_b − x̂_b||², the same normalisation as the TopK loss */
  mse: string;
  /** dMSE/dx̂ = 2(x̂ − x)/B */
  dRecon: string;
}

export function decodeActivations(g: GraphBuilder, e: Encoded, acts: string): Decoded {
  const recon = g.op('Add', [g.op('MatMul', [acts, 'W_dec']), 'b_dec']);
  const error = g.op('Sub', [recon, e.x]);
  const mse = g.op('Div', [g.op('ReduceSum', [g.op('Mul', [error, error])], { keepdims: 0 }), e.batch]);
  const two = g.constFloat([2], [], 'two');
  const dRecon = g.op('Div', [g.op('Mul', [error, two]), e.batch]);
  return { error, mse, dRecon };
}

/** dL/d(acts) through the decoder alone: dRecon·W_decᵀ. */
export function activationGradient(g: GraphBuilder, dRecon: string): string {
  return g.op('MatMul', [dRecon, g.op('Transpose', ['W_dec'], { perm: [1, 0] })]);
}

/** Reconstruction part of dL/dW_dec: actsᵀ·dRecon. */
export function decoderGradient(g: GraphBuilder, acts: string, dRecon: string): string {
  return g.op('MatMul', [g.op('Transpose', [acts], { perm: [1, 0] }), dRecon]);
}

/**
 * Encoder-side gradients from dL/d(pre). b_dec enters twice: added to x̂ directly, and subtracted from x
 * before the encoder, hence the second term of its gradient.
 */
export function encoderGradients(
  g: GraphBuilder,
  e: Encoded,
  dRecon: string,
  dPre: string,
): { W_enc: string; b_enc: string; b_dec: string } {
  const rows0 = g.constInt64([0], [1], 'axis0');
  const bEnc = g.op('ReduceSum', [dPre, rows0], { keepdims: 0 });
  const wEnc = g.op('MatMul', [g.op('Transpose', [e.centred], { perm: [1, 0] }), dPre]);
  const direct = g.op('ReduceSum', [dRecon, rows0], { keepdims: 0 });
  const bDec = g.op('Sub', [direct, g.op('MatMul', ['W_enc', bEnc])]);
  return { W_enc: wEnc, b_enc: bEnc, b_dec: bDec };
}

/** Mask 1 where a value is strictly positive, else 0, as float. */
export function positiveMask(g: GraphBuilder, values: string): string {
  return g.op('Cast', [g.op('Greater', [values, g.constFloat([0], [], 'zero_f')])], { to: 1 });
}

/**
 * Outputs `l0` (mean nonzero latents per vector) and `latent_counts` (vectors firing each latent) from a
 * 0/1 firing matrix [B, m], or from the counts a sparse pass made without one.
 */
export function firingOutputs(
  g: GraphBuilder,
  shape: SaeShape,
  firing: string | { total: string; perLatent: string },
  batch: string,
): void {
  if (typeof firing === 'string') {
    const rows0 = g.constInt64([0], [1], 'axis0');
    g.op('ReduceSum', [firing, rows0], { keepdims: 0 }, 'latent_counts');
    g.op('Div', [g.op('ReduceSum', [firing], { keepdims: 0 }), batch], {}, 'l0');
  } else {
    g.op('Identity', [firing.perLatent], {}, 'latent_counts');
    g.op('Div', [firing.total, batch], {}, 'l0');
  }
  g.output('l0', 'float32', []);
  g.output('latent_counts', 'float32', [shape.m]);
}

/** Exposes the raw gradients under `grad_<p>`, for gradient checks. */
export function gradientOutputs(
  g: GraphBuilder,
  shape: SaeShape,
  params: readonly SaeParam[],
  grads: Record<string, string>,
): void {
  for (const p of params) {
    g.op('Identity', [grads[p]], {}, saeIo.grad(p));
    g.output(saeIo.grad(p), 'float32', saeParamShape(shape, p));
  }
}

export interface UpdateOptions {
  adam: AdamSettings;
  /**
   * Keep decoder rows at unit norm: project the gradient's radial part out before Adam and renormalise
   * after. Off for ReLU-L1, whose penalty reads the row norms and so must be free to change them.
   */
  unitDecoder: boolean;
}

/** Declares moments, lr and t, applies Adam to every parameter and outputs `new_*` tensors. */
export function adamOutputs(
  g: GraphBuilder,
  shape: SaeShape,
  params: readonly SaeParam[],
  grads: Record<string, string>,
  options: UpdateOptions,
): void {
  for (const p of params) {
    g.input(saeIo.moment('m', p), 'float32', saeParamShape(shape, p));
    g.input(saeIo.moment('v', p), 'float32', saeParamShape(shape, p));
  }
  const lr = g.input('lr', 'float32', []);
  const t = g.input('t', 'float32', []);
  const step = adamStep(g, options.adam, lr, t);
  for (const p of params) {
    const grad =
      p === 'W_dec' && options.unitDecoder ? removeParallelComponent(g, grads[p], 'W_dec') : grads[p];
    const normalised = p === 'W_dec' && options.unitDecoder;
    const updated = adamUpdate(
      g,
      options.adam,
      step,
      { param: p, grad, m: saeIo.moment('m', p), v: saeIo.moment('v', p) },
      {
        m: saeIo.updatedMoment('m', p),
        v: saeIo.updatedMoment('v', p),
        ...(normalised ? {} : { param: saeIo.updated(p) }),
      },
    );
    if (normalised) normaliseRows(g, updated.param, saeIo.updated(p));
  }
  for (const p of params) {
    const dims = saeParamShape(shape, p);
    g.output(saeIo.updated(p), 'float32', dims);
    g.output(saeIo.updatedMoment('m', p), 'float32', dims);
    g.output(saeIo.updatedMoment('v', p), 'float32', dims);
  }
}
