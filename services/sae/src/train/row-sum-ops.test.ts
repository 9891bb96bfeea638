import { GraphBuilder, Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { sumRowsByIndex } from './row-sum-ops.js';

/** A graph computing sumRowsByIndex alone, for P rows of width d into m rows. */
async function session(m: number, d: number, threads: number): Promise<ort.InferenceSession> {
  const g = new GraphBuilder();
  const indices = g.input('indices', 'int64', ['rows', 1]);
  const updates = g.input('updates', 'float32', ['rows', d]);
  g.op('Identity', [sumRowsByIndex(g, { m, d }, indices, updates)], {}, 'sums');
  g.output('sums', 'float32', [m, d]);
  return ort.InferenceSession.create(g.encode({ graphName: 'row_sums', opset: 20 }), {
    intraOpNumThreads: threads,
    logSeverityLevel: 3,
  });
}

async function run(s: ort.InferenceSession, indices: number[], updates: Float32Array, d: number) {
  const out = await s.run({
    indices: new ort.Tensor('int64', BigInt64Array.from(indices, BigInt), [indices.length, 1]),
    updates: new ort.Tensor('float32', updates, [indices.length, d]),
  });
  return out.sums.data as Float32Array;
}

/** The float64 sums the graph is checked against. */
function reference(m: number, d: number, indices: number[], updates: Float32Array): Float64Array {
  const out = new Float64Array(m * d);
  for (const [p, i] of indices.entries()) for (let c = 0; c < d; c++) out[i * d + c] += updates[p * d + c];
  return out;
}

describe('sumRowsByIndex (deterministic scatter-add of rows)', () => {
  it('sums rows sharing an index exactly as a float64 loop does, whatever the duplicates', async () => {
    const rng = new Rng(4);
    const [m, d] = [50, 7];
    // one index taking a third of all rows (it spans many chunks at every level), runs that straddle
    // chunk boundaries, indices never used, and an index used once
    const indices: number[] = [];
    for (let p = 0; p < 1500; p++) {
      const u = rng.nextUniform();
      indices.push(u < 0.33 ? 17 : u < 0.34 ? 49 : Math.floor(rng.nextUniform() * 40));
    }
    indices.push(45);
    const updates = Float32Array.from({ length: indices.length * d }, () => rng.nextNormal());
    const expected = reference(m, d, indices, updates);
    const s = await session(m, d, 2);
    try {
      const got = await run(s, indices, updates, d);
      for (let i = 0; i < m * d; i++) {
        // float32 sums of up to ~500 unit normals: a few ulps of the running magnitude
        expect(Math.abs(got[i] - expected[i]), `row ${Math.floor(i / d)}`).toBeLessThan(2e-4);
      }
      for (const unused of [40, 41, 48]) {
        expect(Array.from(got.subarray(unused * d, (unused + 1) * d))).toEqual(new Array(d).fill(0));
      }
    } finally {
      await s.release();
    }
  });

  it('gives bit-identical sums at 1 and 2 threads and run to run', async () => {
    const rng = new Rng(5);
    const [m, d, rows] = [300, 64, 20000];
    const indices = Array.from({ length: rows }, () =>
      rng.nextUniform() < 0.2 ? 3 : Math.floor(rng.nextUniform() ** 2 * m),
    );
    const updates = Float32Array.from({ length: rows * d }, () => rng.nextNormal());
    const results: Float32Array[] = [];
    for (const threads of [1, 2, 2]) {
      const s = await session(m, d, threads);
      results.push(await run(s, indices, updates, d));
      await s.release();
    }
    expect(Buffer.compare(Buffer.from(results[0].buffer), Buffer.from(results[1].buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(results[1].buffer), Buffer.from(results[2].buffer))).toBe(0);
  });

  it('handles a single row and fewer rows than a chunk', async () => {
    const s = await session(4, 2, 1);
    try {
      expect(Array.from(await run(s, [2], Float32Array.from([1, 2]), 2))).toEqual([0, 0, 0, 0, 1, 2, 0, 0]);
      const got = await run(s, [3, 0, 3], Float32Array.from([1, 2, 3, 4, 5, 6]), 2);
      expect(Array.from(got)).toEqual([3, 4, 0, 0, 0, 0, 6, 8]);
    } finally {
      await s.release();
    }
  });
});
