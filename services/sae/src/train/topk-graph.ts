import { GraphBuilder } from '@loupe/common';
import { type AdamSettings, adamStep, adamUpdate, DEFAULT_ADAM } from './adam-ops.js';
import { normaliseRows, removeParallelComponent } from './decoder-norm-ops.js';
import { saeIo, saeParamShape } from './dense-sae-ops.js';
import { sumRowsByIndex } from './row-sum-ops.js';

/** Shape of a TopK SAE: input width d, latent width m, k latents kept per vector. */
export interface TopKShape {
  d: number;
  m: number;
  k: number;
}

/** Parameter names, in the order every graph takes and returns them. */
export const TOPK_PARAMS = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
export type TopKParam = (typeof TOPK_PARAMS)[number];

export function paramShape(shape: TopKShape, name: TopKParam): number[] {
  return saeParamShape(shape, name);
}

/**
 * Graph I/O names. Step graph inputs: x, the parameters, `m_<p>` / `v_<p>` moments, lr, t; outputs:
 * `new_<p>`, `new_m_<p>`, `new_v_<p>`, loss, l0, top_indices, latent_counts. The gradients graph has
 * the same x and parameter inputs and returns loss plus `grad_<p>` (raw, before any projection).
 */
export const io = saeIo;

/**
 * How the k selected latents meet the decoder and the gradients. `dense` scatters them into a [B, m]
 * activation matrix and uses plain MatMuls (simple, and the reference the other is tested against);
 * `sparse` gathers the k decoder rows per vector and scatter-adds the weight gradients, so only the
 * encoder's forward MatMul costs O(B·d·m) and the rest O(B·k·d), as EleutherAI's sparsify does.
 */
export type TopKKernel = 'dense' | 'sparse';

/**
 * AuxK (Gao et al. 2024, "Scaling and evaluating sparse autoencoders", appendix A.2; EleutherAI sparsify
 * does the same): latents that have been dead for a while reconstruct the main reconstruction's residual
 * e = x − x̂ with the k_aux largest of their (ReLU'd) pre-activations, ê = Σ a_j·W_dec[j] (no bias, the
 * paper's ê = W_dec·z). e is a constant (stop-gradient): the aux term reaches the main reconstruction only
 * through the shared encoder and decoder weights.
 *
 * Graph inputs: `dead_mask` [m] (1 dead, 0 alive), `k_aux` int64 [1] (≥ 1; the trainer feeds
 * min(d/2, dead) as sparsify does, 1 when none is dead), `aux_scale` [] (sparsify's min(dead / k_aux, 1),
 * which fades the term out as the dead count falls; 0 turns it off when no latent is dead).
 *
 * Normalisation: sparsify's, auxk = aux_scale·||e − ê||² / ||x − mean(x)||² summed over the batch (the
 * batch's total variance), added with coefficient α (default 1/32) to fvu = ||e||² / total variance.
 * Our main loss is ||e||²/B rather than fvu, so the objective is that sum times total variance / B:
 * loss = (1/B)·(||e||² + α·aux_scale·||e − ê||²), which keeps sparsify's relative weighting exactly. The
 * `aux_loss` output is sparsify's normalised figure, for logging.
 */
export interface AuxKOptions {
  /** α; default 1/32 */
  coefficient?: number;
}

export const DEFAULT_AUXK_COEFFICIENT = 1 / 32;
export const AUXK_INPUTS = { deadMask: 'dead_mask', kAux: 'k_aux', scale: 'aux_scale' } as const;

interface AuxForward {
  /** int64 [1]: picks per vector */
  kAux: string;
  values: string;
  indices: string;
  flatIndices: string;
  rows: string;
  /** ê − e, [B, d] */
  error: string;
  scale: string;
  coefficient: number;
}

interface Forward {
  x: string;
  batch: string;
  centred: string;
  pre: string;
  topValues: string;
  topIndices: string;
  /** dense: the [B, m] activations */
  acts?: string;
  /** sparse: the selected decoder rows [B, k, d] and the indices flattened to [B·k, 1] */
  rows?: string;
  flatIndices?: string;
  error: string;
  loss: string;
  aux?: AuxForward;
}

/**
 * Forward pass. Loss normalisation: mean over the batch of the squared reconstruction error summed
 * over d, i.e. (1/B)·Σ_b ||x_b − x̂_b||². Adam is nearly invariant to the scale, so the choice only
 * matters for comparing loss numbers; this one is the per-vector squared error, independent of B.
 */
function forward(g: GraphBuilder, shape: TopKShape, kernel: TopKKernel, auxk?: AuxKOptions): Forward {
  const x = g.input('x', 'float32', ['batch', shape.d]);
  for (const p of TOPK_PARAMS) g.input(p, 'float32', paramShape(shape, p));
  const batch = g.op('Cast', [g.op('Gather', [g.op('Shape', [x]), g.constInt64([0], [], 'zero')])], {
    to: 1,
  });
  const centred = g.op('Sub', [x, 'b_dec']);
  const pre = g.op('Add', [g.op('MatMul', [centred, 'W_enc']), 'b_enc']);
  // ReLU before TopK: a selected latent with a negative pre-activation contributes zero, as in
  // sparsify, so L0 can fall below k when fewer than k latents are positive.
  const relu = g.op('Relu', [pre]);
  const [topValues, topIndices] = g.opMulti('TopK', [relu, g.constInt64([shape.k], [1], 'k')], 2, {
    axis: 1,
    largest: 1,
    sorted: 0,
  });
  let decoded: string;
  const parts: Partial<Forward> = {};
  if (kernel === 'dense') {
    const zeros = g.op('ConstantOfShape', [g.op('Shape', [pre])]);
    parts.acts = g.op('ScatterElements', [zeros, topIndices, topValues], { axis: 1 });
    decoded = g.op('MatMul', [parts.acts, 'W_dec']);
  } else {
    parts.rows = g.op('Gather', ['W_dec', topIndices], { axis: 0 });
    parts.flatIndices = g.op('Reshape', [topIndices, g.constInt64([-1, 1], [2], 'flat_shape')]);
    // [B, 1, k] · [B, k, d] → [B, 1, d]
    const weights = g.op('Unsqueeze', [topValues, g.constInt64([1], [1], 'axis1')]);
    decoded = g.op('Squeeze', [g.op('MatMul', [weights, parts.rows]), g.constInt64([1], [1], 'axis1')]);
  }
  const recon = g.op('Add', [decoded, 'b_dec']);
  const error = g.op('Sub', [recon, x]);
  const squared = g.op('ReduceSum', [g.op('Mul', [error, error])], { keepdims: 0 });
  if (!auxk) {
    const loss = g.op('Div', [squared, batch], {}, 'loss');
    return { x, batch, centred, pre, topValues, topIndices, error, loss, ...parts };
  }
  const aux = auxForward(g, shape, { x, batch, relu, error }, auxk);
  const auxSquared = g.op('ReduceSum', [g.op('Mul', [aux.error, aux.error])], { keepdims: 0 });
  const weighted = g.op('Mul', [
    g.op('Mul', [auxSquared, aux.scale]),
    g.constFloat([aux.coefficient], [], 'auxk_coefficient'),
  ]);
  const loss = g.op('Div', [g.op('Add', [squared, weighted]), batch], {}, 'loss');
  g.op('Div', [squared, batch], {}, 'mse');
  // sparsify's logged figure: aux_scale·||e − ê||² over the batch's total variance
  const mean = g.op('ReduceMean', [x, g.constInt64([0], [1], 'aux_axis0')], { keepdims: 1 });
  const spread = g.op('Sub', [x, mean]);
  const variance = g.op('Max', [
    g.op('ReduceSum', [g.op('Mul', [spread, spread])], { keepdims: 0 }),
    g.constFloat([1e-30], [], 'tiny'),
  ]);
  g.op('Div', [g.op('Mul', [auxSquared, aux.scale]), variance], {}, 'aux_loss');
  return { x, batch, centred, pre, topValues, topIndices, error, loss, aux, ...parts };
}

/** AuxK's forward: the top k_aux dead latents per vector, gathered decoder rows, ê − e. */
function auxForward(
  g: GraphBuilder,
  shape: TopKShape,
  main: { x: string; batch: string; relu: string; error: string },
  options: AuxKOptions,
): AuxForward {
  const dead = g.input(AUXK_INPUTS.deadMask, 'float32', [shape.m]);
  const kAux = g.input(AUXK_INPUTS.kAux, 'int64', [1]);
  const scale = g.input(AUXK_INPUTS.scale, 'float32', []);
  // Live latents become 0 rather than −∞: if fewer than k_aux dead latents are positive, the extra picks
  // are zeros that add nothing and (masked by positivity below) get no gradient, same as sparsify's.
  const deadRelu = g.op('Mul', [main.relu, dead]);
  const [values, indices] = g.opMulti('TopK', [deadRelu, kAux], 2, { axis: 1, largest: 1, sorted: 0 });
  const rows = g.op('Gather', ['W_dec', indices], { axis: 0 });
  const axis1 = g.constInt64([1], [1], 'aux_axis1');
  const eHat = g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [values, axis1]), rows]), axis1]);
  // main.error is x̂ − x, so ê − e = ê + (x̂ − x)
  const error = g.op('Add', [eHat, main.error]);
  const flatIndices = g.op('Reshape', [indices, g.constInt64([-1, 1], [2], 'aux_flat_shape')]);
  return {
    kAux,
    values,
    indices,
    flatIndices,
    rows,
    error,
    scale,
    coefficient: options.coefficient ?? DEFAULT_AUXK_COEFFICIENT,
  };
}

type Gradients = Record<TopKParam, string>;

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}

/**
 * Hand-written backward pass. Only the k selected latents per row carry gradient: the gradient with
 * respect to each selected activation is masked by ReLU's derivative and flows back to the encoder
 * through those latents alone.
 */
function backward(g: GraphBuilder, shape: TopKShape, f: Forward): Gradients {
  const two = g.constFloat([2], [], 'two');
  // dL/dx̂ = 2(x̂ − x)/B
  const dRecon = g.op('Div', [g.op('Mul', [f.error, two]), f.batch]);
  const rows0 = g.constInt64([0], [1], 'axis0');
  const positive = g.op('Cast', [g.op('Greater', [f.topValues, g.constFloat([0], [], 'zero_f')])], {
    to: 1,
  });
  // made on first use, so the dense kernel without AuxK leaves no unused initializers behind
  const axis2 = once(() => g.constInt64([2], [1], 'axis2'));
  const zerosM = once(() => g.op('ConstantOfShape', [g.constInt64([shape.m], [1], 'm')]));
  const flat = once(() => g.constInt64([-1], [1], 'flat'));
  // Outer products per selected latent, summed into its row, in a fixed order (see row-sum-ops.ts:
  // exact checkpoint resume needs training to be deterministic at any thread count).
  const kMain = once(() => g.constInt64([shape.k], [1], 'k_per_vector'));
  const scatterRows = (
    flatIndices: string,
    coefficients: string,
    vectors: string,
    perVector = kMain(),
    wholeChunks = shape.k % 32 === 0,
  ) =>
    sumRowsByIndex(g, shape, {
      indices: flatIndices,
      weights: coefficients,
      vectors,
      perVector,
      wholeChunks,
    });
  const scatterLatents = (flatIndices: string, values: string) =>
    g.op(
      'ScatterElements',
      [zerosM(), g.op('Reshape', [flatIndices, flat()]), g.op('Reshape', [values, flat()])],
      { axis: 0, reduction: 'add' },
    );
  let dDec: string;
  let dEnc: string;
  let dBiasEnc: string;
  if (f.acts) {
    dDec = g.op('MatMul', [g.op('Transpose', [f.acts], { perm: [1, 0] }), dRecon]);
    const dActs = g.op('MatMul', [dRecon, g.op('Transpose', ['W_dec'], { perm: [1, 0] })]);
    const dTop = g.op('Mul', [g.op('GatherElements', [dActs, f.topIndices], { axis: 1 }), positive]);
    const zeros = g.op('ConstantOfShape', [g.op('Shape', [f.pre])]);
    const dPre = g.op('ScatterElements', [zeros, f.topIndices, dTop], { axis: 1 });
    dEnc = g.op('MatMul', [g.op('Transpose', [f.centred], { perm: [1, 0] }), dPre]);
    dBiasEnc = g.op('ReduceSum', [dPre, rows0], { keepdims: 0 });
  } else if (f.rows && f.flatIndices) {
    // dL/d(selected activation) = dRecon_b · W_dec[idx]: [B, k, d] · [B, d, 1] → [B, k]
    const dTopRaw = g.op('Squeeze', [
      g.op('MatMul', [f.rows, g.op('Unsqueeze', [dRecon, axis2()])]),
      axis2(),
    ]);
    const dTop = g.op('Mul', [dTopRaw, positive]);
    dDec = scatterRows(f.flatIndices, f.topValues, dRecon);
    dEnc = g.op('Transpose', [scatterRows(f.flatIndices, dTop, f.centred)], { perm: [1, 0] });
    dBiasEnc = scatterLatents(f.flatIndices, dTop);
  } else {
    throw new Error('forward pass left neither dense activations nor gathered rows');
  }
  if (f.aux) {
    // AuxK, sparse in both kernels: only the k_aux picked latents per vector get gradient.
    // d(α·s·||ê − e||²/B)/dê = 2α·s·(ê − e)/B, with e held constant.
    const a = f.aux;
    const factor = g.op('Div', [
      g.op('Mul', [a.scale, g.constFloat([2 * a.coefficient], [], 'two_aux')]),
      f.batch,
    ]);
    const dHat = g.op('Mul', [a.error, factor]);
    const auxPositive = g.op('Cast', [g.op('Greater', [a.values, g.constFloat([0], [], 'aux_zero')])], {
      to: 1,
    });
    const dAux = g.op('Mul', [
      g.op('Squeeze', [g.op('MatMul', [a.rows, g.op('Unsqueeze', [dHat, axis2()])]), axis2()]),
      auxPositive,
    ]);
    dDec = g.op('Add', [dDec, scatterRows(a.flatIndices, a.values, dHat, a.kAux, false)]);
    dEnc = g.op('Add', [
      dEnc,
      g.op('Transpose', [scatterRows(a.flatIndices, dAux, f.centred, a.kAux, false)], { perm: [1, 0] }),
    ]);
    dBiasEnc = g.op('Add', [dBiasEnc, scatterLatents(a.flatIndices, dAux)]);
  }
  // b_dec enters twice: added to x̂ directly, and subtracted from x before the encoder.
  const direct = g.op('ReduceSum', [dRecon, rows0], { keepdims: 0 });
  const viaEncoder = g.op('MatMul', ['W_enc', dBiasEnc]);
  const dBiasDec = g.op('Sub', [direct, viaEncoder]);
  return { W_enc: dEnc, b_enc: dBiasEnc, W_dec: dDec, b_dec: dBiasDec };
}

/** A graph returning the loss and the raw gradients, for gradient checks and debugging. */
export function buildTopKGradientGraph(
  shape: TopKShape,
  kernel: TopKKernel = 'sparse',
  auxk?: AuxKOptions,
): Uint8Array {
  const g = new GraphBuilder();
  const f = forward(g, shape, kernel, auxk);
  const grads = backward(g, shape, f);
  g.output(f.loss, 'float32', []);
  if (f.aux) {
    g.output('mse', 'float32', []);
    g.output('aux_loss', 'float32', []);
  }
  for (const p of TOPK_PARAMS) {
    g.op('Identity', [grads[p]], {}, io.grad(p));
    g.output(io.grad(p), 'float32', paramShape(shape, p));
  }
  return g.encode({ graphName: 'sae_topk_gradients', opset: 20 });
}

export interface StepGraphOptions {
  adam?: AdamSettings;
  /** remove the decoder gradient's component along each (unit) decoder row before Adam; default true */
  projectDecoderGradient?: boolean;
  /** default 'sparse' */
  kernel?: TopKKernel;
  /** adds the AuxK term and its inputs (dead_mask, k_aux, aux_scale) and outputs mse and aux_loss */
  auxk?: AuxKOptions;
}

/**
 * One full training step: forward, backward, Adam on every parameter, then decoder rows renormalised to
 * unit norm. Parameters and moments are inputs and outputs, never initializers, so one session serves
 * every step and the caller can feed each step's outputs straight back in.
 */
export function buildTopKStepGraph(shape: TopKShape, options: StepGraphOptions = {}): Uint8Array {
  const settings = options.adam ?? DEFAULT_ADAM;
  const g = new GraphBuilder();
  const f = forward(g, shape, options.kernel ?? 'sparse', options.auxk);
  for (const p of TOPK_PARAMS) {
    g.input(io.moment('m', p), 'float32', paramShape(shape, p));
    g.input(io.moment('v', p), 'float32', paramShape(shape, p));
  }
  const lr = g.input('lr', 'float32', []);
  const t = g.input('t', 'float32', []);
  const grads = backward(g, shape, f);
  if (options.projectDecoderGradient ?? true) {
    grads.W_dec = removeParallelComponent(g, grads.W_dec, 'W_dec');
  }
  const step = adamStep(g, settings, lr, t);
  for (const p of TOPK_PARAMS) {
    const updated = adamUpdate(
      g,
      settings,
      step,
      { param: p, grad: grads[p], m: io.moment('m', p), v: io.moment('v', p) },
      {
        m: io.updatedMoment('m', p),
        v: io.updatedMoment('v', p),
        ...(p === 'W_dec' ? {} : { param: io.updated(p) }),
      },
    );
    if (p === 'W_dec') normaliseRows(g, updated.param, io.updated(p));
  }
  for (const p of TOPK_PARAMS) g.output(io.updated(p), 'float32', paramShape(shape, p));
  for (const p of TOPK_PARAMS) {
    g.output(io.updatedMoment('m', p), 'float32', paramShape(shape, p));
    g.output(io.updatedMoment('v', p), 'float32', paramShape(shape, p));
  }
  g.output(f.loss, 'float32', []);
  if (f.aux) {
    g.output('mse', 'float32', []);
    g.output('aux_loss', 'float32', []);
  }
  // L0: latents actually nonzero per vector, averaged over the batch (≤ k because of the ReLU).
  // Counts come from the selected values alone, so the sparse kernel never builds a [B, m] tensor.
  const firing = g.op('Cast', [g.op('Greater', [f.topValues, g.constFloat([0], [], 'zero_f')])], { to: 1 });
  // ScatterElements for the same reason as in the backward pass: counts feed AuxK's dead mask.
  const flatCounts = g.constInt64([-1], [1], 'flat');
  g.op(
    'ScatterElements',
    [
      g.op('ConstantOfShape', [g.constInt64([shape.m], [1], 'm')]),
      g.op('Reshape', [f.topIndices, flatCounts]),
      g.op('Reshape', [firing, flatCounts]),
    ],
    { axis: 0, reduction: 'add' },
    'latent_counts',
  );
  g.op('Div', [g.op('ReduceSum', [firing], { keepdims: 0 }), f.batch], {}, 'l0');
  g.op('Identity', [f.topIndices], {}, 'top_indices');
  g.output('l0', 'float32', []);
  g.output('latent_counts', 'float32', [shape.m]);
  g.output('top_indices', 'int64', ['batch', shape.k]);
  return g.encode({ graphName: 'sae_topk_step', opset: 20 });
}
