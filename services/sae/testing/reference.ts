import type { TopKParameters } from '../src/train/init.js';
import type { TopKShape } from '../src/train/topk-graph.js';

/**
 * An independent float64 TopK SAE loss in plain JavaScript, written from the definition rather than from
 * the graph, so gradient checks compare two implementations and not one with itself. Returns the loss
 * and, per row, how far the TopK selection and the ReLU signs are from changing under a small perturbation
 * (smallest gap between the k-th and (k+1)-th values, smallest |pre-activation|), and how many rows
 * have fewer than k positive latents (rows where the ReLU mask inside the TopK is exercised).
 */
export function referenceLoss(
  shape: TopKShape,
  p: TopKParameters | Record<keyof TopKParameters, Float64Array>,
  x: Float64Array | Float32Array,
  rows: number,
): { loss: number; minGap: number; minAbsPre: number; rowsBelowK: number } {
  const { d, m, k } = shape;
  let total = 0;
  let minGap = Number.POSITIVE_INFINITY;
  let minAbsPre = Number.POSITIVE_INFINITY;
  let rowsBelowK = 0;
  for (let b = 0; b < rows; b++) {
    const pre = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = p.b_enc[i];
      for (let j = 0; j < d; j++) s += (x[b * d + j] - p.b_dec[j]) * p.W_enc[j * m + i];
      pre[i] = s;
    }
    const relu = Array.from(pre, (v) => Math.max(0, v));
    const order = relu.map((_, i) => i).sort((a, c) => relu[c] - relu[a]);
    const chosen = order.slice(0, k);
    // a tie among zeros does not matter: zero latents add nothing and get no gradient either way
    if (k < m && relu[order[k - 1]] > 0) minGap = Math.min(minGap, relu[order[k - 1]] - relu[order[k]]);
    if (relu[order[k - 1]] === 0) rowsBelowK++;
    for (let i = 0; i < m; i++) minAbsPre = Math.min(minAbsPre, Math.abs(pre[i]));
    for (let j = 0; j < d; j++) {
      let recon = p.b_dec[j];
      for (const i of chosen) recon += relu[i] * p.W_dec[i * d + j];
      total += (recon - x[b * d + j]) ** 2;
    }
  }
  return { loss: total / rows, minGap, minAbsPre, rowsBelowK };
}

/** Parameters of the dense SAEs in float64 (or float32) arrays; JumpReLU adds `threshold`. */
export type ReferenceParams = {
  W_enc: ArrayLike<number>;
  b_enc: ArrayLike<number>;
  W_dec: ArrayLike<number>;
  b_dec: ArrayLike<number>;
  threshold?: ArrayLike<number>;
};

/** Pre-activations (x_b − b_dec)·W_enc + b_enc of one row, in float64. */
function preActivations(
  d: number,
  m: number,
  p: ReferenceParams,
  x: ArrayLike<number>,
  b: number,
): Float64Array {
  const pre = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = p.b_enc[i];
    for (let j = 0; j < d; j++) s += (x[b * d + j] - p.b_dec[j]) * p.W_enc[j * m + i];
    pre[i] = s;
  }
  return pre;
}

/** ||x_b − (f·W_dec + b_dec)||² of one row. */
function rowSquaredError(
  d: number,
  p: ReferenceParams,
  x: ArrayLike<number>,
  b: number,
  f: Float64Array,
): number {
  let total = 0;
  for (let j = 0; j < d; j++) {
    let recon = p.b_dec[j];
    for (let i = 0; i < f.length; i++) if (f[i] !== 0) recon += f[i] * p.W_dec[i * d + j];
    total += (recon - x[b * d + j]) ** 2;
  }
  return total;
}

/**
 * ReLU SAE loss with the decoder-norm-weighted L1 penalty, from the definition:
 * (1/B)·Σ_b ||x_b − x̂_b||² + λ·(1/B)·Σ_b Σ_i ReLU(pre_bi)·||W_dec[i]||. Also returns the smallest
 * |pre-activation|, so a caller can pick inputs where finite differences do not straddle a ReLU kink.
 */
export function referenceReluL1Loss(
  shape: { d: number; m: number },
  p: ReferenceParams,
  x: ArrayLike<number>,
  rows: number,
  lambda: number,
): { loss: number; mse: number; minAbsPre: number } {
  const { d, m } = shape;
  const norms = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += p.W_dec[i * d + j] ** 2;
    norms[i] = Math.sqrt(s);
  }
  let squared = 0;
  let penalty = 0;
  let minAbsPre = Number.POSITIVE_INFINITY;
  for (let b = 0; b < rows; b++) {
    const pre = preActivations(d, m, p, x, b);
    const f = pre.map((v) => Math.max(0, v));
    for (let i = 0; i < m; i++) {
      minAbsPre = Math.min(minAbsPre, Math.abs(pre[i]));
      penalty += f[i] * norms[i];
    }
    squared += rowSquaredError(d, p, x, b, f);
  }
  return { loss: (squared + lambda * penalty) / rows, mse: squared / rows, minAbsPre };
}

/**
 * BatchTopK SAE loss from the definition: ReLU pre-activations, the k·B largest over the whole batch
 * kept, (1/B)·Σ_b ||x_b − x̂_b||². Also returns the gap between the k·B-th and next value (the selection
 * is stable under perturbations smaller than that), the smallest |pre-activation|, how many kept values
 * are zero, and the smallest kept positive activation.
 */
export function referenceBatchTopKLoss(
  shape: { d: number; m: number; k: number },
  p: ReferenceParams,
  x: ArrayLike<number>,
  rows: number,
  /** Matryoshka: nested widths below m; the loss is the mean of every prefix's squared error and m's */
  prefixes: readonly number[] = [],
): { loss: number; minGap: number; minAbsPre: number; keptZeros: number; minKept: number } {
  const { d, m, k } = shape;
  const relu: Float64Array[] = [];
  let minAbsPre = Number.POSITIVE_INFINITY;
  for (let b = 0; b < rows; b++) {
    const pre = preActivations(d, m, p, x, b);
    for (const v of pre) minAbsPre = Math.min(minAbsPre, Math.abs(v));
    relu.push(pre.map((v) => Math.max(0, v)));
  }
  const flat = relu.flatMap((row, b) => Array.from(row, (value, i) => ({ value, b, i })));
  flat.sort((a, c) => c.value - a.value);
  const keep = k * rows;
  const kept = flat.slice(0, keep);
  const minGap =
    keep < flat.length && kept[keep - 1].value > 0
      ? kept[keep - 1].value - flat[keep].value
      : Number.POSITIVE_INFINITY;
  const acts = relu.map(() => new Float64Array(m));
  for (const { value, b, i } of kept) acts[b][i] = value;
  let squared = 0;
  for (const width of [...prefixes, m])
    for (let b = 0; b < rows; b++)
      squared += rowSquaredError(
        d,
        p,
        x,
        b,
        acts[b].map((v, i) => (i < width ? v : 0)),
      );
  const positive = kept.filter((e) => e.value > 0);
  return {
    loss: squared / rows / (prefixes.length + 1),
    minGap,
    minAbsPre,
    keptZeros: keep - positive.length,
    minKept: positive.length ? positive[positive.length - 1].value : Number.POSITIVE_INFINITY,
  };
}

/**
 * JumpReLU SAE loss from the definition (threshold θ, H(0) = 0), and, since that loss is
 * piecewise constant in θ, the straight-through pseudo-gradient with respect to θ written
 * out from the pseudo-derivatives stated in jumprelu-graph.ts, in float64. Also returns the smallest
 * |pre − θ| (finite differences elsewhere must not cross a jump), the smallest distance of |pre − θ| to
 * the kernel's edge ε/2, and how many entries fall inside the kernel window.
 */
export function referenceJumpReluLoss(
  shape: { d: number; m: number },
  p: ReferenceParams,
  x: ArrayLike<number>,
  rows: number,
  lambda: number,
  bandwidth: number,
): {
  loss: number;
  mse: number;
  thresholdPseudoGrad: Float64Array;
  minAbsShift: number;
  minEdgeDistance: number;
  inWindow: number;
} {
  const { d, m } = shape;
  const given = p.threshold;
  if (!given) throw new Error('JumpReLU parameters need threshold');
  const theta = Float64Array.from(given);
  const pseudo = new Float64Array(m);
  let squared = 0;
  let fired = 0;
  let minAbsShift = Number.POSITIVE_INFINITY;
  let minEdgeDistance = Number.POSITIVE_INFINITY;
  let inWindow = 0;
  for (let b = 0; b < rows; b++) {
    const pre = preActivations(d, m, p, x, b);
    const f = pre.map((v, i) => (v > theta[i] ? v : 0));
    for (const v of f) if (v !== 0) fired++;
    squared += rowSquaredError(d, p, x, b, f);
    const residual = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      let recon = p.b_dec[j];
      for (let i = 0; i < m; i++) recon += f[i] * p.W_dec[i * d + j];
      residual[j] = recon - x[b * d + j];
    }
    for (let i = 0; i < m; i++) {
      const shift = pre[i] - theta[i];
      minAbsShift = Math.min(minAbsShift, Math.abs(shift));
      minEdgeDistance = Math.min(minEdgeDistance, Math.abs(Math.abs(shift) - bandwidth / 2));
      if (Math.abs(shift) >= bandwidth / 2) continue;
      inWindow++;
      // dL/df_bi, then ∂f/∂θ = −θ/ε and the L0 term's ∂H/∂θ = −1/ε
      let dF = 0;
      for (let j = 0; j < d; j++) dF += (2 / rows) * residual[j] * p.W_dec[i * d + j];
      pseudo[i] += dF * (-theta[i] / bandwidth) + (lambda / rows) * (-1 / bandwidth);
    }
  }
  return {
    loss: (squared + lambda * fired) / rows,
    mse: squared / rows,
    thresholdPseudoGrad: pseudo,
    minAbsShift,
    minEdgeDistance,
    inWindow,
  };
}

/** AuxK's inputs, as the TopK step graph takes them (see AuxKOptions in topk-graph.ts). */
export interface ReferenceAuxK {
  /** 1 dead, 0 alive, per latent */
  deadMask: ArrayLike<number>;
  kAux: number;
  scale: number;
  coefficient: number;
  /**
   * The residual e = x − x̂ per row [rows·d], held fixed (AuxK's stop-gradient). Finite differences must
   * pass the residual of the unperturbed parameters here; without it e is computed from `p`.
   */
  residual?: Float64Array;
}

/**
 * TopK loss plus AuxK from the definition, in float64: (1/B)·(Σ_b ||e_b||² + α·s·Σ_b ||e_b − ê_b||²) with
 * ê_b = Σ over the k_aux largest ReLU pre-activations among dead latents of a_j·W_dec[j]. Also returns
 * the residual (for holding it fixed), sparsify's normalised aux figure, the smallest gap at the k_aux-th
 * dead value (selection stability), and how many picked dead values are positive.
 */
export function referenceAuxKLoss(
  shape: TopKShape,
  p: TopKParameters | Record<keyof TopKParameters, Float64Array>,
  x: Float64Array | Float32Array,
  rows: number,
  aux: ReferenceAuxK,
): {
  loss: number;
  mse: number;
  auxLoss: number;
  residual: Float64Array;
  auxMinGap: number;
  auxPositive: number;
} {
  const { d, m, k } = shape;
  const residual = new Float64Array(rows * d);
  let squared = 0;
  for (let b = 0; b < rows; b++) {
    const pre = preActivations(d, m, p, x, b);
    const relu = Array.from(pre, (v) => Math.max(0, v));
    const order = relu.map((_, i) => i).sort((a, c) => relu[c] - relu[a]);
    const f = new Float64Array(m);
    for (const i of order.slice(0, k)) f[i] = relu[i];
    squared += rowResidual(d, p, x, b, f, residual);
  }
  const term = referenceAuxTerm(shape, p, x, rows, aux, aux.residual ?? residual);
  return {
    loss: (squared + aux.coefficient * aux.scale * term.squared) / rows,
    mse: squared / rows,
    auxLoss: term.normalised,
    residual,
    auxMinGap: term.minGap,
    auxPositive: term.positive,
  };
}

/** Writes e_b = x_b − (f·W_dec + b_dec) into `residual` and returns ||e_b||². */
function rowResidual(
  d: number,
  p: ReferenceParams,
  x: ArrayLike<number>,
  b: number,
  f: Float64Array,
  residual: Float64Array,
): number {
  let total = 0;
  for (let j = 0; j < d; j++) {
    let recon = p.b_dec[j];
    for (let i = 0; i < f.length; i++) if (f[i] !== 0) recon += f[i] * p.W_dec[i * d + j];
    residual[b * d + j] = x[b * d + j] - recon;
    total += residual[b * d + j] ** 2;
  }
  return total;
}

/**
 * The AuxK term's pieces for a given residual e (held fixed by the caller for finite differences):
 * Σ_b ||e_b − ê_b||², sparsify's normalised figure s·Σ||e − ê||² / Σ||x − mean(x)||², the smallest gap at
 * the k_aux-th dead value, and how many picked dead values are positive.
 */
export function referenceAuxTerm(
  shape: { d: number; m: number },
  p: ReferenceParams,
  x: ArrayLike<number>,
  rows: number,
  aux: ReferenceAuxK,
  residual: Float64Array,
): { squared: number; normalised: number; minGap: number; positive: number } {
  const { d, m } = shape;
  let squared = 0;
  let minGap = Number.POSITIVE_INFINITY;
  let positive = 0;
  for (let b = 0; b < rows; b++) {
    const pre = preActivations(d, m, p, x, b);
    const dead = Array.from(pre, (v, i) => (aux.deadMask[i] ? Math.max(0, v) : 0));
    const order = dead.map((_, i) => i).sort((a, c) => dead[c] - dead[a]);
    const picked = order.slice(0, aux.kAux);
    if (aux.kAux < m && dead[order[aux.kAux - 1]] > 0)
      minGap = Math.min(minGap, dead[order[aux.kAux - 1]] - dead[order[aux.kAux]]);
    for (let j = 0; j < d; j++) {
      let eHat = 0;
      for (const i of picked) eHat += dead[i] * p.W_dec[i * d + j];
      squared += (residual[b * d + j] - eHat) ** 2;
    }
    for (const i of picked) if (dead[i] > 0) positive++;
  }
  let variance = 0;
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let b = 0; b < rows; b++) mean += x[b * d + j];
    mean /= rows;
    for (let b = 0; b < rows; b++) variance += (x[b * d + j] - mean) ** 2;
  }
  return { squared, normalised: (aux.scale * squared) / variance, minGap, positive };
}

/**
 * BatchTopK loss plus AuxK from the definition (see referenceBatchTopKLoss and referenceAuxKLoss): the
 * residual is that of the batch-level selection.
 */
export function referenceBatchTopKAuxKLoss(
  shape: { d: number; m: number; k: number },
  p: ReferenceParams,
  x: ArrayLike<number>,
  rows: number,
  aux: ReferenceAuxK,
): {
  loss: number;
  mse: number;
  auxLoss: number;
  residual: Float64Array;
  auxMinGap: number;
  auxPositive: number;
} {
  const { d, m, k } = shape;
  const relu: Float64Array[] = [];
  for (let b = 0; b < rows; b++) relu.push(preActivations(d, m, p, x, b).map((v) => Math.max(0, v)));
  const flat = relu.flatMap((row, b) => Array.from(row, (value, i) => ({ value, b, i })));
  flat.sort((a, c) => c.value - a.value);
  const acts = relu.map(() => new Float64Array(m));
  for (const { value, b, i } of flat.slice(0, k * rows)) acts[b][i] = value;
  const residual = new Float64Array(rows * d);
  let squared = 0;
  for (let b = 0; b < rows; b++) squared += rowResidual(d, p, x, b, acts[b], residual);
  const term = referenceAuxTerm(shape, p, x, rows, aux, aux.residual ?? residual);
  return {
    loss: (squared + aux.coefficient * aux.scale * term.squared) / rows,
    mse: squared / rows,
    auxLoss: term.normalised,
    residual,
    auxMinGap: term.minGap,
    auxPositive: term.positive,
  };
}
