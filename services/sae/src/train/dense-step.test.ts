import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { paramFeeds, randomSaeParams } from '../../testing/gradient-check.js';
import type { ArchPass } from './arch-pass.js';
import { batchTopKPass } from './batchtopk-graph.js';
import { SAE_PARAMS, type SaeParam, type SaeShape, saeIo, saeParamShape } from './dense-sae-ops.js';
import { JUMPRELU_PARAMS, jumpReluPass, L0_INPUT } from './jumprelu-graph.js';
import { L1_INPUT, reluL1Pass } from './relu-l1-graph.js';
import { buildGradientGraph, buildStepGraph } from './sae-graphs.js';

const shape: SaeShape = { d: 6, m: 10 };
const rows = 4;

interface Case {
  name: string;
  params: readonly SaeParam[];
  pass: (g: Parameters<typeof reluL1Pass>[0], s: SaeShape) => ArchPass;
  inputs: Record<string, number>;
  unitDecoder: boolean;
}

const cases: Case[] = [
  { name: 'relu', params: SAE_PARAMS, pass: reluL1Pass, inputs: { [L1_INPUT]: 0.7 }, unitDecoder: false },
  {
    name: 'batchtopk',
    params: SAE_PARAMS,
    pass: (g, s) => batchTopKPass(g, { ...s, k: 3 }),
    inputs: {},
    unitDecoder: true,
  },
  {
    name: 'jumprelu',
    params: JUMPRELU_PARAMS,
    pass: (g, s) => jumpReluPass(g, s, 0.3),
    inputs: { [L0_INPUT]: 0.7 },
    unitDecoder: true,
  },
];

/**
 * The step graphs apply what the gradient graphs compute: Adam on every parameter (JumpReLU's threshold
 * included) and, where the architecture holds decoder rows at unit norm, the radial projection before
 * and the renormalisation after, recomputed here in float64 from the gradient graph's output.
 */
describe('dense SAE step graphs', () => {
  it.each(cases)('($name) apply Adam and the decoder constraint as written in float64', async (c) => {
    const params = randomSaeParams(shape, c.params, 4);
    if (c.unitDecoder) {
      for (let r = 0; r < shape.m; r++) {
        const row = params.W_dec.subarray(r * shape.d, (r + 1) * shape.d);
        const norm = Math.hypot(...row);
        for (let j = 0; j < shape.d; j++) row[j] /= norm;
      }
    }
    const x = new Rng(1004).normalFloat32(rows * shape.d, 0, 1);
    const feeds = paramFeeds(shape, c.params, params, x, rows);
    for (const [name, value] of Object.entries(c.inputs))
      feeds[name] = new ort.Tensor('float32', Float32Array.of(value), []);
    const gradSession = await ort.InferenceSession.create(buildGradientGraph(shape, c.pass, c.name), {
      intraOpNumThreads: 1,
    });
    const grads = await gradSession.run(feeds);
    await gradSession.release();

    const rng = new Rng(77);
    const lr = 0.01;
    const t = 3;
    const moments: Record<string, Float32Array> = {};
    for (const p of c.params) {
      const n = saeParamShape(shape, p).reduce((a, b) => a * b, 1);
      moments[saeIo.moment('m', p)] = rng.normalFloat32(n, 0, 0.1);
      moments[saeIo.moment('v', p)] = Float32Array.from(rng.normalFloat32(n, 0, 0.1), (v) => v * v);
      feeds[saeIo.moment('m', p)] = new ort.Tensor(
        'float32',
        moments[saeIo.moment('m', p)],
        saeParamShape(shape, p),
      );
      feeds[saeIo.moment('v', p)] = new ort.Tensor(
        'float32',
        moments[saeIo.moment('v', p)],
        saeParamShape(shape, p),
      );
    }
    feeds.lr = new ort.Tensor('float32', Float32Array.of(lr), []);
    feeds.t = new ort.Tensor('float32', Float32Array.of(t), []);
    const stepSession = await ort.InferenceSession.create(buildStepGraph(shape, c.pass, c.name), {
      intraOpNumThreads: 1,
    });
    const out = await stepSession.run(feeds);
    await stepSession.release();

    for (const p of c.params) {
      const g = Float64Array.from(grads[saeIo.grad(p)].data as Float32Array);
      const current = params[p] as Float32Array;
      if (p === 'W_dec' && c.unitDecoder) {
        for (let r = 0; r < shape.m; r++) {
          let along = 0;
          for (let j = 0; j < shape.d; j++) along += g[r * shape.d + j] * current[r * shape.d + j];
          for (let j = 0; j < shape.d; j++) g[r * shape.d + j] -= along * current[r * shape.d + j];
        }
      }
      const m0 = moments[saeIo.moment('m', p)];
      const v0 = moments[saeIo.moment('v', p)];
      const expected = new Float64Array(g.length);
      for (let i = 0; i < g.length; i++) {
        const m1 = 0.9 * m0[i] + 0.1 * g[i];
        const v1 = 0.999 * v0[i] + 0.001 * g[i] * g[i];
        expected[i] = current[i] - (lr * (m1 / (1 - 0.9 ** t))) / (Math.sqrt(v1 / (1 - 0.999 ** t)) + 1e-8);
      }
      if (p === 'W_dec' && c.unitDecoder) {
        for (let r = 0; r < shape.m; r++) {
          const row = expected.subarray(r * shape.d, (r + 1) * shape.d);
          const norm = Math.hypot(...row);
          for (let j = 0; j < shape.d; j++) row[j] /= norm;
        }
      }
      const got = out[saeIo.updated(p)].data as Float32Array;
      for (let i = 0; i < expected.length; i++) {
        expect(Math.abs(got[i] - expected[i]), `${p}[${i}]`).toBeLessThan(
          1e-5 * Math.max(1, Math.abs(expected[i])),
        );
      }
    }
  });
});
