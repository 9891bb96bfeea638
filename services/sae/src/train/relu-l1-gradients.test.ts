import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { checkAgainstFiniteDifferences, paramFeeds, randomSaeParams } from '../../testing/gradient-check.js';
import { referenceReluL1Loss } from '../../testing/reference.js';
import { SAE_PARAMS, type SaeShape } from './dense-sae-ops.js';
import { K_CAP_INPUT, L1_INPUT, type ReluL1Kernel, reluL1Pass } from './relu-l1-graph.js';
import { buildGradientGraph } from './sae-graphs.js';

const shape: SaeShape = { d: 6, m: 10 };
const rows = 4;
const lambda = 0.7;

describe('ReLU-L1 SAE gradients', () => {
  // the sparse kernel with k_cap = m − 1, enough for any vector here but still a pick, not the whole row
  it.each(['dense', 'sparse'] as ReluL1Kernel[])(
    '(%s kernel) match central finite differences of an independent float64 loss',
    async (kernel) => {
      let seed = 1;
      // a case whose ReLU signs do not flip under the finite-difference step
      for (; ; seed++) {
        const params = randomSaeParams(shape, SAE_PARAMS, seed);
        const x = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
        if (referenceReluL1Loss(shape, params, x, rows, lambda).minAbsPre > 1e-2) break;
      }
      const params = randomSaeParams(shape, SAE_PARAMS, seed);
      const x = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
      const session = await ort.InferenceSession.create(
        buildGradientGraph(shape, (g, s) => reluL1Pass(g, s, kernel), 'relu_l1'),
        {
          intraOpNumThreads: 1,
        },
      );
      const out = await session.run({
        ...paramFeeds(shape, SAE_PARAMS, params, x, rows),
        [L1_INPUT]: new ort.Tensor('float32', Float32Array.of(lambda), []),
        ...(kernel === 'sparse'
          ? { [K_CAP_INPUT]: new ort.Tensor('int64', BigInt64Array.of(BigInt(shape.m - 1)), [1]) }
          : {}),
      });
      if (kernel === 'sparse') expect((out.complete.data as Float32Array)[0]).toBe(1);
      await session.release();
      const result = checkAgainstFiniteDifferences(
        SAE_PARAMS,
        params,
        out,
        (p) => referenceReluL1Loss(shape, p, x, rows, lambda).loss,
      );
      expect((out.loss.data as Float32Array)[0]).toBeCloseTo(
        referenceReluL1Loss(shape, params, x, rows, lambda).loss,
        4,
      );
      expect(result.failures).toEqual([]);
      // guard against a vacuous pass on an all-zero gradient, and make sure the penalty's decoder term
      // was exercised (some latent fired)
      expect(result.largest).toBeGreaterThan(0.1);
      console.log(
        `ReLU-L1 gradient check (${kernel}): worst scaled error ${result.worst.toExponential(2)}, largest |g| ${result.largest.toFixed(3)}`,
      );
    },
  );
});
