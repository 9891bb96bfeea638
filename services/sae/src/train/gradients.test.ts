import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { referenceLoss } from '../../testing/reference.js';
import {
  buildTopKGradientGraph,
  buildTopKStepGraph,
  io,
  paramShape,
  TOPK_PARAMS,
  type TopKParam,
  type TopKShape,
} from './topk-graph.js';

const shape: TopKShape = { d: 6, m: 10, k: 3 };
const rows = 4;

type Params = Record<TopKParam, Float32Array>;

/**
 * Random parameters (not unit-norm, biases nonzero) so every term of the backward pass matters; b_enc
 * is shifted negative so some rows have fewer than k positive pre-activations.
 */
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
    b_enc: draw('b_enc', 0.3).map((v) => v - 0.5),
    W_dec: draw('W_dec', 0.6),
    b_dec: draw('b_dec', 0.3),
  };
}

function feeds(p: Params, x: Float32Array): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [rows, shape.d]) };
  for (const name of TOPK_PARAMS) out[name] = new ort.Tensor('float32', p[name], paramShape(shape, name));
  return out;
}

/**
 * Picks a seed whose TopK selection and ReLU signs are robust to the finite-difference step, and where
 * at least one row has fewer than k positive latents so the ReLU mask on the selected ones is tested.
 */
function wellSeparatedCase(): { params: Params; x: Float32Array } {
  for (let seed = 1; ; seed++) {
    const params = randomParams(seed);
    const x = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
    const { minGap, minAbsPre, rowsBelowK } = referenceLoss(shape, params, x, rows);
    if (minGap > 1e-2 && minAbsPre > 1e-2 && rowsBelowK > 0) return { params, x };
  }
}

describe('TopK SAE gradients', () => {
  it.each(['dense', 'sparse'] as const)(
    '(%s kernel) match central finite differences of an independent float64 loss',
    async (kernel) => {
      const { params, x } = wellSeparatedCase();
      const session = await ort.InferenceSession.create(buildTopKGradientGraph(shape, kernel), {
        intraOpNumThreads: 1,
      });
      const out = await session.run(feeds(params, x));
      await session.release();

      const base = Object.fromEntries(TOPK_PARAMS.map((p) => [p, Float64Array.from(params[p])])) as Record<
        TopKParam,
        Float64Array
      >;
      expect((out.loss.data as Float32Array)[0]).toBeCloseTo(referenceLoss(shape, base, x, rows).loss, 4);

      // h = 1e-5 in float64: truncation error ~h²·|f'''| ≈ 1e-10 and rounding ~1e-16/h ≈ 1e-11, both far
      // below the float32 graph's own error. That error: each gradient entry is a sum of a few dozen
      // float32 products of O(1) values, so ~1e-6 relative; 1e-4·max(1, |g|) leaves a 100× margin while
      // a wrong term (a missing b_dec path, a mask on the wrong latents) moves entries by O(0.1–1).
      const h = 1e-5;
      let worst = 0;
      let largest = 0;
      for (const p of TOPK_PARAMS) {
        const graph = out[io.grad(p)].data as Float32Array;
        for (let i = 0; i < base[p].length; i++) {
          const keep = base[p][i];
          base[p][i] = keep + h;
          const plus = referenceLoss(shape, base, x, rows).loss;
          base[p][i] = keep - h;
          const minus = referenceLoss(shape, base, x, rows).loss;
          base[p][i] = keep;
          const numeric = (plus - minus) / (2 * h);
          const error = Math.abs(graph[i] - numeric) / Math.max(1, Math.abs(numeric));
          worst = Math.max(worst, error);
          largest = Math.max(largest, Math.abs(numeric));
          expect(error, `${p}[${i}] graph ${graph[i]} vs numeric ${numeric}`).toBeLessThan(1e-4);
        }
      }
      // guard against a vacuous pass on an all-zero gradient
      expect(largest).toBeGreaterThan(0.1);
      console.log(
        `gradient check (${kernel}): worst scaled error ${worst.toExponential(2)}, largest |g| ${largest.toFixed(3)}`,
      );
    },
  );

  it.each(['dense', 'sparse'] as const)(
    '(%s kernel) step graph applies projection, Adam and row normalisation as written in float64',
    async (kernel) => {
      const { params, x } = wellSeparatedCase();
      // the projection assumes unit decoder rows, as the trainer keeps them
      for (let r = 0; r < shape.m; r++) {
        const row = params.W_dec.subarray(r * shape.d, (r + 1) * shape.d);
        const norm = Math.hypot(...row);
        for (let j = 0; j < shape.d; j++) row[j] /= norm;
      }
      const gradSession = await ort.InferenceSession.create(buildTopKGradientGraph(shape, kernel), {
        intraOpNumThreads: 1,
      });
      const grads = await gradSession.run(feeds(params, x));
      await gradSession.release();

      const rng = new Rng(77);
      const stepFeeds = feeds(params, x);
      const moments: Record<string, Float32Array> = {};
      for (const p of TOPK_PARAMS) {
        const n = params[p].length;
        moments[io.moment('m', p)] = rng.normalFloat32(n, 0, 0.1);
        moments[io.moment('v', p)] = Float32Array.from(rng.normalFloat32(n, 0, 0.1), (v) => v * v);
      }
      for (const [name, data] of Object.entries(moments)) {
        stepFeeds[name] = new ort.Tensor('float32', data, paramShapeOf(name));
      }
      const lr = 0.01;
      const t = 3;
      stepFeeds.lr = new ort.Tensor('float32', Float32Array.of(lr), []);
      stepFeeds.t = new ort.Tensor('float32', Float32Array.of(t), []);
      const stepSession = await ort.InferenceSession.create(buildTopKStepGraph(shape, { kernel }), {
        intraOpNumThreads: 1,
      });
      const out = await stepSession.run(stepFeeds);
      await stepSession.release();

      for (const p of TOPK_PARAMS) {
        const g = Float64Array.from(grads[io.grad(p)].data as Float32Array);
        if (p === 'W_dec') {
          for (let r = 0; r < shape.m; r++) {
            let along = 0;
            for (let j = 0; j < shape.d; j++) along += g[r * shape.d + j] * params.W_dec[r * shape.d + j];
            for (let j = 0; j < shape.d; j++) g[r * shape.d + j] -= along * params.W_dec[r * shape.d + j];
          }
        }
        const m0 = moments[io.moment('m', p)];
        const v0 = moments[io.moment('v', p)];
        const expected = new Float64Array(g.length);
        const m1 = new Float64Array(g.length);
        const v1 = new Float64Array(g.length);
        for (let i = 0; i < g.length; i++) {
          m1[i] = 0.9 * m0[i] + 0.1 * g[i];
          v1[i] = 0.999 * v0[i] + 0.001 * g[i] * g[i];
          const mHat = m1[i] / (1 - 0.9 ** t);
          const vHat = v1[i] / (1 - 0.999 ** t);
          expected[i] = params[p][i] - (lr * mHat) / (Math.sqrt(vHat) + 1e-8);
        }
        if (p === 'W_dec') {
          for (let r = 0; r < shape.m; r++) {
            const row = expected.subarray(r * shape.d, (r + 1) * shape.d);
            const norm = Math.hypot(...row);
            for (let j = 0; j < shape.d; j++) row[j] /= norm;
          }
        }
        const close = (got: Float32Array, want: Float64Array, what: string) => {
          for (let i = 0; i < want.length; i++) {
            expect(Math.abs(got[i] - want[i]), `${what}[${i}]`).toBeLessThan(
              1e-5 * Math.max(1, Math.abs(want[i])),
            );
          }
        };
        close(out[io.updated(p)].data as Float32Array, expected, io.updated(p));
        close(out[io.updatedMoment('m', p)].data as Float32Array, m1, io.updatedMoment('m', p));
        close(out[io.updatedMoment('v', p)].data as Float32Array, v1, io.updatedMoment('v', p));
      }
    },
  );
});

function paramShapeOf(momentName: string): number[] {
  return paramShape(shape, momentName.slice(2) as TopKParam);
}
