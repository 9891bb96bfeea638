import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { checkAgainstFiniteDifferences, paramFeeds, randomSaeParams } from '../../testing/gradient-check.js';
import { referenceBatchTopKAuxKLoss, referenceBatchTopKLoss } from '../../testing/reference.js';
import { batchTopKPass, MIN_KEPT_OUTPUT } from './batchtopk-graph.js';
import { SAE_PARAMS } from './dense-sae-ops.js';
import { buildGradientGraph } from './sae-graphs.js';
import { auxKFeeds } from './sae-trainer.js';

const shape = { d: 6, m: 10, k: 3 };
const rows = 4;

/**
 * A case whose batch-level selection and ReLU signs survive the finite-difference step, and where the
 * selection is uneven across rows (some row keeps more than k latents, some fewer), which is the point
 * of BatchTopK and what a per-row TopK written by mistake would get wrong.
 */
function unevenCase() {
  for (let seed = 1; ; seed++) {
    const params = randomSaeParams(shape, SAE_PARAMS, seed);
    const x = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
    const ref = referenceBatchTopKLoss(shape, params, x, rows);
    if (ref.minGap < 1e-2 || ref.minAbsPre < 1e-2 || ref.keptZeros > 0) continue;
    const perRow = keptPerRow(params, x);
    if (Math.max(...perRow) > shape.k && Math.min(...perRow) < shape.k) return { params, x, perRow };
  }
}

/** How many latents each row keeps, from the reference's definition (pre above the k·B-th value). */
function keptPerRow(params: ReturnType<typeof randomSaeParams>, x: Float32Array): number[] {
  const pre: number[][] = [];
  for (let b = 0; b < rows; b++) {
    const row: number[] = [];
    for (let i = 0; i < shape.m; i++) {
      let s = params.b_enc[i];
      for (let j = 0; j < shape.d; j++)
        s += (x[b * shape.d + j] - params.b_dec[j]) * params.W_enc[j * shape.m + i];
      row.push(Math.max(0, s));
    }
    pre.push(row);
  }
  const cut = pre.flat().sort((a, c) => c - a)[shape.k * rows - 1];
  return pre.map((row) => row.filter((v) => v >= cut && v > 0).length);
}

describe('BatchTopK SAE gradients', () => {
  it('match central finite differences of an independent float64 loss', async () => {
    const { params, x, perRow } = unevenCase();
    const session = await ort.InferenceSession.create(
      buildGradientGraph(shape, (g, s) => batchTopKPass(g, { ...s, k: shape.k }), 'batchtopk'),
      { intraOpNumThreads: 1 },
    );
    const out = await session.run(paramFeeds(shape, SAE_PARAMS, params, x, rows));
    await session.release();
    const ref = referenceBatchTopKLoss(shape, params, x, rows);
    expect((out.loss.data as Float32Array)[0]).toBeCloseTo(ref.loss, 4);
    expect((out[MIN_KEPT_OUTPUT].data as Float32Array)[0]).toBeCloseTo(ref.minKept, 5);
    const result = checkAgainstFiniteDifferences(
      SAE_PARAMS,
      params,
      out,
      (p) => referenceBatchTopKLoss(shape, p, x, rows).loss,
    );
    expect(result.failures).toEqual([]);
    expect(result.largest).toBeGreaterThan(0.1);
    console.log(
      `BatchTopK gradient check: kept per row ${perRow.join(',')}; worst scaled error ` +
        `${result.worst.toExponential(2)}, largest |g| ${result.largest.toFixed(3)}`,
    );
  });

  it('with Matryoshka prefixes, match finite differences of the float64 prefix losses', async () => {
    const { params, x } = unevenCase();
    const prefixes = [3, 6];
    const session = await ort.InferenceSession.create(
      buildGradientGraph(
        shape,
        (g, s) => batchTopKPass(g, { ...s, k: shape.k }, undefined, false, prefixes),
        'matryoshka',
      ),
      { intraOpNumThreads: 1 },
    );
    const out = await session.run(paramFeeds(shape, SAE_PARAMS, params, x, rows));
    await session.release();
    const ref = referenceBatchTopKLoss(shape, params, x, rows, prefixes);
    // the prefixes must change the loss, or the check below would not see them
    expect(Math.abs(ref.loss - referenceBatchTopKLoss(shape, params, x, rows).loss)).toBeGreaterThan(0.01);
    expect((out.loss.data as Float32Array)[0]).toBeCloseTo(ref.loss, 4);
    const result = checkAgainstFiniteDifferences(
      SAE_PARAMS,
      params,
      out,
      (p) => referenceBatchTopKLoss(shape, p, x, rows, prefixes).loss,
    );
    expect(result.failures).toEqual([]);
    expect(result.largest).toBeGreaterThan(0.1);
  });

  it('with AuxK, match finite differences of the float64 reference (residual held fixed)', async () => {
    // 6 dead latents, k_aux = d/2 = 3 of them per vector, scale 1; α = 0.5 so the aux share is visible
    const deadMask = Float32Array.from({ length: shape.m }, (_, i) => (i % 5 < 3 ? 1 : 0));
    const aux = { deadMask, kAux: 3, scale: 1, coefficient: 0.5 };
    let found: { params: ReturnType<typeof randomSaeParams>; x: Float32Array } | undefined;
    for (let seed = 1; seed < 1000 && !found; seed++) {
      const params = randomSaeParams(shape, SAE_PARAMS, seed);
      const x = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
      const main = referenceBatchTopKLoss(shape, params, x, rows);
      const ref = referenceBatchTopKAuxKLoss(shape, params, x, rows, aux);
      if (
        main.minGap > 1e-2 &&
        main.minAbsPre > 1e-2 &&
        main.keptZeros === 0 &&
        ref.auxMinGap > 1e-2 &&
        ref.auxPositive >= rows
      )
        found = { params, x };
    }
    if (!found) throw new Error('no well-separated case');
    const { params, x } = found;
    const session = await ort.InferenceSession.create(
      buildGradientGraph(
        shape,
        (g, s) => batchTopKPass(g, { ...s, k: shape.k }, { coefficient: 0.5 }),
        'batchtopk',
      ),
      { intraOpNumThreads: 1 },
    );
    const out = await session.run({
      ...paramFeeds(shape, SAE_PARAMS, params, x, rows),
      ...auxKFeeds(shape, deadMask),
    });
    await session.release();
    const at = referenceBatchTopKAuxKLoss(shape, params, x, rows, aux);
    expect((out.loss.data as Float32Array)[0]).toBeCloseTo(at.loss, 4);
    expect((out.mse.data as Float32Array)[0]).toBeCloseTo(at.mse, 4);
    expect((out.aux_loss.data as Float32Array)[0]).toBeCloseTo(at.auxLoss, 5);
    const fixed = { ...aux, residual: at.residual };
    const withAux = checkAgainstFiniteDifferences(
      SAE_PARAMS,
      params,
      out,
      (p) => referenceBatchTopKAuxKLoss(shape, p, x, rows, fixed).loss,
    );
    expect(withAux.failures).toEqual([]);
    // the aux term must matter: the graph's gradients are far from the main loss's alone
    const mainOnly = checkAgainstFiniteDifferences(
      SAE_PARAMS,
      params,
      out,
      (p) => referenceBatchTopKLoss(shape, p, x, rows).loss,
    );
    expect(mainOnly.worst).toBeGreaterThan(0.05);
  });
});
