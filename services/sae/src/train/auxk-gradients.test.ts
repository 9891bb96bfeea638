import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { referenceAuxKLoss } from '../../testing/reference.js';
import {
  AUXK_INPUTS,
  buildTopKGradientGraph,
  io,
  paramShape,
  TOPK_PARAMS,
  type TopKParam,
  type TopKShape,
} from './topk-graph.js';

const shape: TopKShape = { d: 6, m: 12, k: 3 };
const rows = 5;
// larger than the default 1/32 so the aux term's share of each gradient is well above the tolerance
const coefficient = 0.5;

type Params = Record<TopKParam, Float32Array>;

function randomParams(seed: number): Params {
  const rng = new Rng(seed);
  const draw = (p: TopKParam, std: number) =>
    rng.normalFloat32(
      paramShape(shape, p).reduce((a, b) => a * b, 1),
      0,
      std,
    );
  return {
    W_enc: draw('W_enc', 0.6),
    b_enc: draw('b_enc', 0.3).map((v) => v - 0.2),
    W_dec: draw('W_dec', 0.6),
    b_dec: draw('b_dec', 0.3),
  };
}

/**
 * Two dead sets: 7 dead latents with k_aux = d/2 = 3 (selection among the dead matters, scale 1), and 2
 * dead latents with k_aux capped at 2 (scale 2/3, as sparsify's min(dead / k_aux, 1)).
 */
const CASES = [
  { name: '7 dead, k_aux 3', dead: [0, 2, 3, 5, 7, 8, 11], kAux: 3, scale: 1 },
  { name: '2 dead, k_aux 2', dead: [4, 9], kAux: 2, scale: 2 / 3 },
];

describe('TopK SAE with AuxK', () => {
  it.each(CASES)('gradients match central finite differences of the float64 reference ($name)', async (c) => {
    const deadMask = new Float32Array(shape.m);
    for (const i of c.dead) deadMask[i] = 1;
    const aux = { deadMask, kAux: c.kAux, scale: c.scale, coefficient };
    let params: Params | undefined;
    let x: Float32Array | undefined;
    for (let seed = 1; seed < 500; seed++) {
      const p = randomParams(seed);
      const v = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
      const r = referenceAuxKLoss(shape, p, v, rows, aux);
      const main = mainGaps(p, v);
      // selections stable under h, and every row has at least one positive dead pick (the aux path is used)
      if (r.auxMinGap > 1e-2 && main > 1e-2 && r.auxPositive >= rows) {
        params = p;
        x = v;
        break;
      }
    }
    if (!params || !x) throw new Error('no well-separated case found');

    const session = await ort.InferenceSession.create(
      buildTopKGradientGraph(shape, 'sparse', { coefficient }),
      {
        intraOpNumThreads: 1,
      },
    );
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [rows, shape.d]) };
    for (const p of TOPK_PARAMS) feeds[p] = new ort.Tensor('float32', params[p], paramShape(shape, p));
    feeds[AUXK_INPUTS.deadMask] = new ort.Tensor('float32', deadMask, [shape.m]);
    feeds[AUXK_INPUTS.kAux] = new ort.Tensor('int64', BigInt64Array.of(BigInt(c.kAux)), [1]);
    feeds[AUXK_INPUTS.scale] = new ort.Tensor('float32', Float32Array.of(c.scale), []);
    const out = await session.run(feeds);
    await session.release();

    const base = Object.fromEntries(TOPK_PARAMS.map((p) => [p, Float64Array.from(params[p])])) as Record<
      TopKParam,
      Float64Array
    >;
    const at = referenceAuxKLoss(shape, base, x, rows, aux);
    expect((out.loss.data as Float32Array)[0]).toBeCloseTo(at.loss, 4);
    expect((out.mse.data as Float32Array)[0]).toBeCloseTo(at.mse, 4);
    expect((out.aux_loss.data as Float32Array)[0]).toBeCloseTo(at.auxLoss, 5);
    // the stop-gradient: e is held at the unperturbed parameters' residual
    const fixed = { ...aux, residual: at.residual };

    // Same tolerance argument as gradients.test.ts: float32 sums of a few dozen O(1) products.
    const h = 1e-5;
    let auxShare = 0;
    for (const p of TOPK_PARAMS) {
      const graph = out[io.grad(p)].data as Float32Array;
      for (let i = 0; i < base[p].length; i++) {
        const keep = base[p][i];
        base[p][i] = keep + h;
        const plus = referenceAuxKLoss(shape, base, x, rows, fixed);
        base[p][i] = keep - h;
        const minus = referenceAuxKLoss(shape, base, x, rows, fixed);
        base[p][i] = keep;
        const numeric = (plus.loss - minus.loss) / (2 * h);
        const mainOnly = (plus.mse - minus.mse) / (2 * h);
        auxShare = Math.max(auxShare, Math.abs(numeric - mainOnly));
        const error = Math.abs(graph[i] - numeric) / Math.max(1, Math.abs(numeric));
        expect(error, `${p}[${i}] graph ${graph[i]} vs numeric ${numeric}`).toBeLessThan(1e-4);
      }
    }
    // the aux term must move some gradient entry by far more than the tolerance, or the check is vacuous
    expect(auxShare).toBeGreaterThan(0.05);
  });
});

/** Smallest gap at the main TopK selection and smallest |pre-activation| (both must exceed h). */
function mainGaps(p: Params, x: Float32Array): number {
  let gap = Number.POSITIVE_INFINITY;
  for (let b = 0; b < rows; b++) {
    const pre = new Float64Array(shape.m);
    for (let i = 0; i < shape.m; i++) {
      let s = p.b_enc[i];
      for (let j = 0; j < shape.d; j++) s += (x[b * shape.d + j] - p.b_dec[j]) * p.W_enc[j * shape.m + i];
      pre[i] = s;
      gap = Math.min(gap, Math.abs(s));
    }
    const relu = Array.from(pre, (v) => Math.max(0, v)).sort((a, c) => c - a);
    if (relu[shape.k - 1] > 0) gap = Math.min(gap, relu[shape.k - 1] - relu[shape.k]);
  }
  return gap;
}
