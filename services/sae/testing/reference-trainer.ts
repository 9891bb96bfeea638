/**
 * A minimal independent SAE trainer in float64 plain JavaScript, written from the definitions (the
 * papers' forward passes, the straight-through estimators stated in jumprelu-graph.ts, Adam as Kingma &
 * Ba write it, decoder rows held at unit norm) rather than from the ONNX graphs, so the training set-up
 * (selection, warm start, gradient projection, Adam, renormalisation) can be compared step by step.
 * Dense loops: for tiny shapes only.
 */
export interface ReferenceTrainerSettings {
  d: number;
  m: number;
  kind: 'topk' | 'batchtopk' | 'jumprelu';
  /** latents per vector (topk), mean per vector (batchtopk), or the warm start's k (jumprelu) */
  k: number;
  /** steps selecting per vector before the architecture's own rule (batchtopk, jumprelu) */
  warmStartSteps: number;
  /** jumprelu: λ (constant) and the kernel bandwidth ε */
  lambda?: number;
  bandwidth?: number;
  adam: { beta1: number; beta2: number; eps: number };
}

export type Float64Params = Record<string, Float64Array>;

/** Trains `params` in place over `batches` (row-major [rows, d]) with the given learning rates. */
export function referenceTrain(
  s: ReferenceTrainerSettings,
  params: Float64Params,
  batches: Float32Array[],
  rows: number,
  lrs: number[],
): void {
  const moments: Record<string, { m: Float64Array; v: Float64Array }> = {};
  for (const [name, value] of Object.entries(params))
    moments[name] = { m: new Float64Array(value.length), v: new Float64Array(value.length) };
  batches.forEach((x, step) => {
    const grads = referenceGradients(s, params, x, rows, step < s.warmStartSteps);
    projectDecoder(s, params.W_dec, grads.W_dec);
    const t = step + 1;
    for (const [name, value] of Object.entries(params)) {
      const g = grads[name];
      const { m, v } = moments[name];
      for (let i = 0; i < value.length; i++) {
        m[i] = s.adam.beta1 * m[i] + (1 - s.adam.beta1) * g[i];
        v[i] = s.adam.beta2 * v[i] + (1 - s.adam.beta2) * g[i] * g[i];
        const mHat = m[i] / (1 - s.adam.beta1 ** t);
        const vHat = v[i] / (1 - s.adam.beta2 ** t);
        value[i] -= (lrs[step] * mHat) / (Math.sqrt(vHat) + s.adam.eps);
      }
    }
    for (let r = 0; r < s.m; r++) {
      let norm = 0;
      for (let j = 0; j < s.d; j++) norm += params.W_dec[r * s.d + j] ** 2;
      norm = Math.max(Math.sqrt(norm), 1e-12);
      for (let j = 0; j < s.d; j++) params.W_dec[r * s.d + j] /= norm;
    }
  });
}

/** The gate [rows·m] (1 where a latent's activation is kept) under the step's selection rule. */
function gate(
  s: ReferenceTrainerSettings & { theta?: Float64Array },
  pre: Float64Array,
  rows: number,
  warm: boolean,
): Float64Array {
  const { m, k } = s;
  const out = new Float64Array(rows * m);
  if (warm || s.kind === 'topk') {
    for (let b = 0; b < rows; b++) {
      const order = Array.from({ length: m }, (_, i) => i).sort((i, j) => pre[b * m + j] - pre[b * m + i]);
      for (const i of order.slice(0, k)) if (pre[b * m + i] > 0) out[b * m + i] = 1;
    }
  } else if (s.kind === 'batchtopk') {
    const order = Array.from(pre.keys()).sort((i, j) => pre[j] - pre[i]);
    for (const i of order.slice(0, k * rows)) if (pre[i] > 0) out[i] = 1;
  } else {
    const theta = s.theta as Float64Array;
    for (let b = 0; b < rows; b++)
      for (let i = 0; i < m; i++) if (pre[b * m + i] > theta[i]) out[b * m + i] = 1;
  }
  return out;
}

function referenceGradients(
  s: ReferenceTrainerSettings & { theta?: Float64Array },
  p: Float64Params,
  x: Float32Array,
  rows: number,
  warm: boolean,
): Float64Params {
  const { d, m } = s;
  const centred = new Float64Array(rows * d);
  for (let b = 0; b < rows; b++) for (let j = 0; j < d; j++) centred[b * d + j] = x[b * d + j] - p.b_dec[j];
  const pre = new Float64Array(rows * m);
  for (let b = 0; b < rows; b++)
    for (let i = 0; i < m; i++) {
      let v = p.b_enc[i];
      for (let j = 0; j < d; j++) v += centred[b * d + j] * p.W_enc[j * m + i];
      pre[b * m + i] = v;
    }
  const open = gate({ ...s, theta: p.threshold }, pre, rows, warm);
  const dRecon = new Float64Array(rows * d);
  for (let b = 0; b < rows; b++)
    for (let j = 0; j < d; j++) {
      let recon = p.b_dec[j];
      for (let i = 0; i < m; i++) recon += open[b * m + i] * pre[b * m + i] * p.W_dec[i * d + j];
      dRecon[b * d + j] = (2 * (recon - x[b * d + j])) / rows;
    }
  const g: Float64Params = {};
  for (const [name, value] of Object.entries(p)) g[name] = new Float64Array(value.length);
  for (let b = 0; b < rows; b++)
    for (let i = 0; i < m; i++) {
      let dAct = 0;
      for (let j = 0; j < d; j++) dAct += dRecon[b * d + j] * p.W_dec[i * d + j];
      const a = open[b * m + i] * pre[b * m + i];
      const dPre = open[b * m + i] * dAct;
      g.b_enc[i] += dPre;
      for (let j = 0; j < d; j++) {
        g.W_enc[j * m + i] += centred[b * d + j] * dPre;
        g.W_dec[i * d + j] += a * dRecon[b * d + j];
      }
      if (p.threshold) {
        // ∂f/∂θ := −(θ/ε)K and ∂H/∂θ := −(1/ε)K with the rectangle kernel, as the paper states them
        const eps = s.bandwidth as number;
        const theta = p.threshold[i];
        if (Math.abs(pre[b * m + i] - theta) < eps / 2)
          g.threshold[i] += (-1 / eps) * (theta * dAct + (s.lambda as number) / rows);
      }
    }
  for (let j = 0; j < d; j++) {
    let direct = 0;
    for (let b = 0; b < rows; b++) direct += dRecon[b * d + j];
    let viaEncoder = 0;
    for (let i = 0; i < m; i++) viaEncoder += p.W_enc[j * m + i] * g.b_enc[i];
    g.b_dec[j] = direct - viaEncoder;
  }
  return g;
}

/** Removes each decoder row's gradient component along that (unit) row. */
function projectDecoder(s: ReferenceTrainerSettings, wDec: Float64Array, grad: Float64Array): void {
  for (let r = 0; r < s.m; r++) {
    let along = 0;
    for (let j = 0; j < s.d; j++) along += grad[r * s.d + j] * wDec[r * s.d + j];
    for (let j = 0; j < s.d; j++) grad[r * s.d + j] -= along * wDec[r * s.d + j];
  }
}
