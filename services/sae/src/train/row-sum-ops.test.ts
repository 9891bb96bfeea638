import { GraphBuilder, Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { sumRowsByIndex } from './row-sum-ops.js';

interface Case {
  m: number;
  d: number;
  /** picks per vector */
  k: number;
  /** [B·k] output row of each pick */
  indices: number[];
  /** [B·k] */
  weights: Float32Array;
  /** [B, d] */
  vectors: Float32Array;
  /** [B·k] picks to sum (all when absent) */
  keep?: boolean[];
}

/** A graph computing sumRowsByIndex alone. */
async function session(c: Case, threads: number, wholeChunks = false): Promise<ort.InferenceSession> {
  const g = new GraphBuilder();
  const indices = g.input('indices', 'int64', ['picks', 1]);
  const weights = g.input('weights', 'float32', ['picks']);
  const vectors = g.input('vectors', 'float32', ['batch', c.d]);
  const perVector = g.input('k', 'int64', [1]);
  const keep = c.keep ? g.input('keep', 'bool', ['picks']) : undefined;
  const sums = sumRowsByIndex(g, c, { indices, weights, vectors, perVector, wholeChunks, keep });
  g.op('Identity', [sums], {}, 'sums');
  g.output('sums', 'float32', [c.m, c.d]);
  return ort.InferenceSession.create(g.encode({ graphName: 'row_sums', opset: 20 }), {
    intraOpNumThreads: threads,
    logSeverityLevel: 3,
  });
}

async function run(s: ort.InferenceSession, c: Case): Promise<Float32Array> {
  const out = await s.run({
    indices: new ort.Tensor('int64', BigInt64Array.from(c.indices, BigInt), [c.indices.length, 1]),
    weights: new ort.Tensor('float32', c.weights, [c.weights.length]),
    vectors: new ort.Tensor('float32', c.vectors, [c.vectors.length / c.d, c.d]),
    k: new ort.Tensor('int64', BigInt64Array.from([BigInt(c.k)]), [1]),
    ...(c.keep ? { keep: new ort.Tensor('bool', Uint8Array.from(c.keep, Number), [c.keep.length]) } : {}),
  });
  return out.sums.data as Float32Array;
}

/** The float64 sums the graph is checked against. */
function reference(c: Case): Float64Array {
  const out = new Float64Array(c.m * c.d);
  for (const [p, i] of c.indices.entries()) {
    if (c.keep && !c.keep[p]) continue;
    const b = Math.floor(p / c.k);
    for (let j = 0; j < c.d; j++) out[i * c.d + j] += c.weights[p] * c.vectors[b * c.d + j];
  }
  return out;
}

function randomCase(
  seed: number,
  m: number,
  d: number,
  k: number,
  batch: number,
  pick: (rng: Rng) => number,
): Case {
  const rng = new Rng(seed);
  return {
    m,
    d,
    k,
    indices: Array.from({ length: batch * k }, () => pick(rng)),
    weights: Float32Array.from({ length: batch * k }, () => rng.nextNormal()),
    vectors: Float32Array.from({ length: batch * d }, () => rng.nextNormal()),
  };
}

describe('sumRowsByIndex (deterministic scatter-add of weighted rows)', () => {
  it('sums picks sharing an index exactly as a float64 loop does, whatever the duplicates', async () => {
    // one index taking a third of all picks (it spans many chunks at every level), runs that straddle
    // chunk boundaries, an index picked once, indices never picked
    const c = randomCase(4, 50, 7, 5, 300, (rng) => {
      const u = rng.nextUniform();
      return u < 0.33 ? 17 : u < 0.34 ? 49 : Math.floor(rng.nextUniform() * 40);
    });
    c.indices[c.indices.length - 1] = 45;
    const expected = reference(c);
    const s = await session(c, 2);
    try {
      const got = await run(s, c);
      for (let i = 0; i < c.m * c.d; i++) {
        // float32 sums of up to ~500 products of unit normals: a few ulps of the running magnitude
        expect(Math.abs(got[i] - expected[i]), `row ${Math.floor(i / c.d)}`).toBeLessThan(2e-4);
      }
      for (const unused of [40, 41, 48]) {
        expect(Array.from(got.subarray(unused * c.d, (unused + 1) * c.d))).toEqual(new Array(c.d).fill(0));
      }
    } finally {
      await s.release();
    }
  });

  it('needs no padding when the picks are whole chunks (k = 32)', async () => {
    const c = randomCase(6, 90, 5, 32, 20, (rng) => Math.floor(rng.nextUniform() ** 3 * 90));
    const expected = reference(c);
    const s = await session(c, 2, true);
    try {
      const got = await run(s, c);
      for (let i = 0; i < c.m * c.d; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThan(1e-4);
    } finally {
      await s.release();
    }
  });

  it('leaves out the picks not kept, whatever their weights', async () => {
    const c = randomCase(7, 60, 6, 12, 200, (rng) => Math.floor(rng.nextUniform() ** 2 * 60));
    const rng = new Rng(8);
    c.keep = c.indices.map(() => rng.nextUniform() < 0.3);
    const expected = reference(c);
    const s = await session(c, 2);
    try {
      const got = await run(s, c);
      for (let i = 0; i < c.m * c.d; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThan(1e-4);
    } finally {
      await s.release();
    }
  });

  it('gives bit-identical sums at 1 and 2 threads and run to run', async () => {
    const c = randomCase(5, 300, 64, 8, 2500, (rng) =>
      rng.nextUniform() < 0.2 ? 3 : Math.floor(rng.nextUniform() ** 2 * 300),
    );
    const results: Float32Array[] = [];
    for (const threads of [1, 2, 2]) {
      const s = await session(c, threads);
      results.push(await run(s, c));
      await s.release();
    }
    expect(Buffer.compare(Buffer.from(results[0].buffer), Buffer.from(results[1].buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(results[1].buffer), Buffer.from(results[2].buffer))).toBe(0);
  });

  it('handles a single pick and fewer picks than a chunk', async () => {
    const one: Case = {
      m: 4,
      d: 2,
      k: 1,
      indices: [2],
      weights: Float32Array.from([2]),
      vectors: Float32Array.from([1, 2]),
    };
    const s = await session(one, 1);
    try {
      expect(Array.from(await run(s, one))).toEqual([0, 0, 0, 0, 2, 4, 0, 0]);
      const three: Case = { ...one, k: 3, indices: [3, 0, 3], weights: Float32Array.from([1, 1, 2]) };
      expect(Array.from(await run(s, three))).toEqual([1, 2, 0, 0, 0, 0, 3, 6]);
    } finally {
      await s.release();
    }
  });

  it('refuses a width whose indices float32 cannot sort exactly', () => {
    const g = new GraphBuilder();
    const rows = {
      indices: g.input('indices', 'int64', ['picks', 1]),
      weights: g.input('weights', 'float32', ['picks']),
      vectors: g.input('vectors', 'float32', ['batch', 4]),
      perVector: g.input('k', 'int64', [1]),
    };
    expect(() => sumRowsByIndex(g, { m: 2 ** 24, d: 4 }, rows)).toThrow(/2\^24/);
    expect(() => sumRowsByIndex(g, { m: 2 ** 24 - 1, d: 4 }, rows)).not.toThrow();
  });
});
