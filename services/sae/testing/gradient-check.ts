import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import {
  type SaeArrays,
  type SaeParam,
  type SaeShape,
  saeIo,
  saeParamShape,
} from '../src/train/dense-sae-ops.js';

/** Helpers for the gradient tests of the dense architectures. */

export type ParamArrays = SaeArrays<Float32Array>;

/**
 * Random parameters, not unit-norm and with nonzero biases, so every term of a backward pass matters.
 * b_enc is shifted negative so a fair share of latents stay off; threshold sits around θ ≈ 0.2.
 */
export function randomSaeParams(shape: SaeShape, params: readonly SaeParam[], seed: number): ParamArrays {
  const rng = new Rng(seed);
  const size = (p: SaeParam) => saeParamShape(shape, p).reduce((a, b) => a * b, 1);
  const out: ParamArrays = {
    W_enc: rng.normalFloat32(size('W_enc'), 0, 0.6),
    b_enc: rng.normalFloat32(size('b_enc'), 0, 0.3).map((v) => v - 0.3),
    W_dec: rng.normalFloat32(size('W_dec'), 0, 0.6),
    b_dec: rng.normalFloat32(size('b_dec'), 0, 0.3),
  };
  if (params.includes('threshold'))
    out.threshold = rng.normalFloat32(size('threshold'), -1.6, 0.3).map(Math.exp);
  return out;
}

export function paramFeeds(
  shape: SaeShape,
  params: readonly SaeParam[],
  values: ParamArrays,
  x: Float32Array,
  rows: number,
): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [rows, shape.d]) };
  for (const p of params)
    out[p] = new ort.Tensor('float32', values[p] as Float32Array, saeParamShape(shape, p));
  return out;
}

export interface CheckResult {
  /** worst |graph − numeric| / max(1, |numeric|) */
  worst: number;
  /** largest |numeric| seen, to rule out a vacuous pass */
  largest: number;
  failures: string[];
}

/**
 * Compares the graph's `grad_<p>` outputs with central differences of a float64 loss, parameter by
 * parameter. h = 1e-5 in float64: truncation ~h²·|f'''| ≈ 1e-10 and rounding ~1e-16/h ≈ 1e-11, far
 * below the float32 graph's own ~1e-6 relative error; the 1e-4 tolerance leaves a 100× margin while a
 * wrong term moves entries by O(0.1–1). `expected` replaces finite differences for parameters whose
 * gradient is defined by a pseudo-derivative rather than by the loss (JumpReLU's threshold).
 */
export function checkAgainstFiniteDifferences(
  params: readonly SaeParam[],
  values: ParamArrays,
  out: ort.InferenceSession.OnnxValueMapType,
  loss: (p: Record<SaeParam, Float64Array>) => number,
  expected: Partial<Record<SaeParam, Float64Array>> = {},
): CheckResult {
  const base = {} as Record<SaeParam, Float64Array>;
  for (const p of params) base[p] = Float64Array.from(values[p] as Float32Array);
  const h = 1e-5;
  const result: CheckResult = { worst: 0, largest: 0, failures: [] };
  for (const p of params) {
    const graph = out[saeIo.grad(p)].data as Float32Array;
    for (let i = 0; i < base[p].length; i++) {
      let want: number;
      const given = expected[p];
      if (given) want = given[i];
      else {
        const keep = base[p][i];
        base[p][i] = keep + h;
        const plus = loss(base);
        base[p][i] = keep - h;
        const minus = loss(base);
        base[p][i] = keep;
        want = (plus - minus) / (2 * h);
      }
      const error = Math.abs(graph[i] - want) / Math.max(1, Math.abs(want));
      result.worst = Math.max(result.worst, error);
      result.largest = Math.max(result.largest, Math.abs(want));
      if (!(error < 1e-4)) result.failures.push(`${p}[${i}] graph ${graph[i]} vs expected ${want}`);
    }
  }
  return result;
}
