import { Rng } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { reduceWindow } from './unit-records.js';
import { WindowReducer } from './window-reducer.js';

describe('WindowReducer (ONNX Runtime) against the JavaScript reduction', () => {
  it('gives the same max, min, non-zero count and (to float32 rounding) sum per window and neuron', async () => {
    const rng = new Rng(11);
    const [windows, tokens, width] = [5, 7, 13];
    const data = Float32Array.from({ length: windows * tokens * width }, () =>
      rng.nextUniform() < 0.3 ? 0 : rng.nextNormal(),
    );
    const reducer = await WindowReducer.create({ device: 'cpu', intraOpThreads: 1 });
    try {
      const reduced = await reducer.reduce(data, windows, tokens, width);
      for (let w = 0; w < windows; w++) {
        const expected = reduceWindow(
          data.subarray(w * tokens * width, (w + 1) * tokens * width),
          tokens,
          width,
        );
        expect(Array.from(reduced[w].max)).toEqual(Array.from(expected.max));
        expect(Array.from(reduced[w].min)).toEqual(Array.from(expected.min));
        expect(Array.from(reduced[w].nonZero)).toEqual(Array.from(expected.nonZero));
        // 7 float32 additions: summation order may differ, so allow a few ulps of the magnitudes involved
        for (let j = 0; j < width; j++)
          expect(Math.abs(reduced[w].sum[j] - expected.sum[j])).toBeLessThan(1e-5);
      }
    } finally {
      await reducer.release();
    }
  });

  it('reads a view into a larger buffer from its offset (capture reduces forward outputs in place)', async () => {
    const rng = new Rng(12);
    const [windows, tokens, width] = [3, 4, 5];
    const size = windows * tokens * width;
    const buffer = Float32Array.from({ length: 3 * size }, () => rng.nextNormal());
    const view = buffer.subarray(size, 2 * size);
    const reducer = await WindowReducer.create({ device: 'cpu', intraOpThreads: 1 });
    try {
      const reduced = await reducer.reduce(view, windows, tokens, width);
      for (let w = 0; w < windows; w++) {
        const expected = reduceWindow(
          view.subarray(w * tokens * width, (w + 1) * tokens * width),
          tokens,
          width,
        );
        expect(Array.from(reduced[w].max)).toEqual(Array.from(expected.max));
        expect(Array.from(reduced[w].min)).toEqual(Array.from(expected.min));
      }
    } finally {
      await reducer.release();
    }
  });
});
