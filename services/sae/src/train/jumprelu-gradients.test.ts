import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { checkAgainstFiniteDifferences, paramFeeds, randomSaeParams } from '../../testing/gradient-check.js';
import { referenceJumpReluLoss } from '../../testing/reference.js';
import { JUMPRELU_PARAMS, jumpReluPass, L0_INPUT } from './jumprelu-graph.js';
import { buildGradientGraph } from './sae-graphs.js';

const shape = { d: 6, m: 10 };
const rows = 4;
const lambda = 0.7;
// wide enough that a random case puts several pre-activations inside the kernel window; the formulas
// do not depend on ε's size, and the training default (0.001) is a separate choice of scale
const bandwidth = 0.3;

/**
 * The step function has no derivative to difference, so the check is split: W_enc, b_enc, W_dec and b_dec
 * are compared with central finite differences of the float64 loss (away from the jumps the loss is
 * smooth in them, and the L0 term is locally constant, which is what the pseudo-derivative
 * ∂H/∂pre := 0 says too); threshold, whose true derivative is zero almost everywhere, is compared
 * with the float64 pseudo-gradient the reference computes from the stated straight-through estimators.
 */
describe('JumpReLU SAE gradients', () => {
  it('match finite differences (weights) and float64 pseudo-gradients (threshold)', async () => {
    let seed = 1;
    for (; ; seed++) {
      const params = randomSaeParams(shape, JUMPRELU_PARAMS, seed);
      const x = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
      const ref = referenceJumpReluLoss(shape, params, x, rows, lambda, bandwidth);
      if (ref.minAbsShift > 1e-2 && ref.minEdgeDistance > 1e-3 && ref.inWindow >= 3) break;
    }
    const params = randomSaeParams(shape, JUMPRELU_PARAMS, seed);
    const x = new Rng(seed + 1000).normalFloat32(rows * shape.d, 0, 1);
    const ref = referenceJumpReluLoss(shape, params, x, rows, lambda, bandwidth);
    const session = await ort.InferenceSession.create(
      buildGradientGraph(shape, (g, s) => jumpReluPass(g, s, bandwidth), 'jumprelu'),
      { intraOpNumThreads: 1 },
    );
    const out = await session.run({
      ...paramFeeds(shape, JUMPRELU_PARAMS, params, x, rows),
      [L0_INPUT]: new ort.Tensor('float32', Float32Array.of(lambda), []),
    });
    await session.release();
    expect((out.loss.data as Float32Array)[0]).toBeCloseTo(ref.loss, 4);
    const result = checkAgainstFiniteDifferences(
      JUMPRELU_PARAMS,
      params,
      out,
      (p) => referenceJumpReluLoss(shape, p, x, rows, lambda, bandwidth).loss,
      { threshold: ref.thresholdPseudoGrad },
    );
    expect(result.failures).toEqual([]);
    expect(result.largest).toBeGreaterThan(0.1);
    // the threshold's pseudo-gradient must be exercised, not a vector of zeros
    const largestThreshold = Math.max(...Array.from(ref.thresholdPseudoGrad, Math.abs));
    expect(largestThreshold).toBeGreaterThan(0.05);
    console.log(
      `JumpReLU gradient check: ${ref.inWindow} entries in the kernel window; worst scaled error ` +
        `${result.worst.toExponential(2)}, largest |g| ${result.largest.toFixed(3)}, largest |dL/dθ| ` +
        `${largestThreshold.toFixed(3)}`,
    );
  });
});
