import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { GraphBuilder } from '@loupe/common';
import ort from 'onnxruntime-node';

/**
 * The machine's float32 matrix-multiply rate under ONNX Runtime: [m, k] · [k, n] with the weight as an
 * initializer (prepacked), the same situation as every GPT-2 projection. The reference for "fraction of
 * peak" figures. These machines are shared and their speed drifts by 2× within minutes, so callers
 * measure it interleaved with the work they compare (see `interleaved`).
 */
export class MatmulProbe {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly input: ort.Tensor,
    readonly flops: number,
  ) {}

  static async create(m = 1024, k = 768, n = 3072, provider: 'cpu' | 'cuda' = 'cpu'): Promise<MatmulProbe> {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [m, k]);
    const w = g.inlineWeight(
      'w',
      [k, n],
      Float32Array.from({ length: k * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5),
    );
    g.op('MatMul', [x, w], {}, 'y');
    g.output('y', 'float32', [m, n]);
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-mm-')), 'matmul.onnx');
    await fs.writeFile(file, g.encode({ graphName: 'matmul', opset: 20 }));
    const session = await ort.InferenceSession.create(file, {
      executionProviders: [provider],
      intraOpNumThreads: 0,
      graphOptimizationLevel: 'all',
    });
    const input = new ort.Tensor(
      'float32',
      Float32Array.from({ length: m * k }, (_, i) => (i % 13) / 13),
      [m, k],
    );
    const probe = new MatmulProbe(session, input, 2 * m * k * n);
    await probe.once();
    return probe;
  }

  /** FLOP/s of one best-of-3 burst. */
  async once(): Promise<number> {
    await delay(30);
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const start = process.hrtime.bigint();
      await this.session.run({ x: this.input });
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
    }
    return this.flops / best;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * Alternates a matmul burst and one run of `fn`, `rounds` times after a warm-up, and returns the
 * median seconds of `fn` and the median matmul rate measured beside it.
 */
export async function interleaved(
  probe: MatmulProbe,
  fn: () => Promise<unknown>,
  rounds = 5,
): Promise<{ seconds: number; rate: number }> {
  await fn();
  const seconds: number[] = [];
  const rates: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // a pause lets the other session's spinning worker threads go idle before each measurement
    await delay(30);
    rates.push(await probe.once());
    await delay(30);
    const start = process.hrtime.bigint();
    await fn();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return { seconds: median(seconds), rate: median(rates) };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * How much slower `b` is than `a`: both run back to back in each round (order alternating), and the
 * median of the per-round ratios is returned, so drift between rounds cancels instead of needing a
 * reference workload to correct for it.
 */
export async function pairedSlowdown(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  rounds = 7,
): Promise<number> {
  const time = async (fn: () => Promise<unknown>) => {
    await delay(30);
    const start = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  await a();
  await b();
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let ta: number;
    let tb: number;
    // alternate which goes first, so neither always gets the same slot
    if (i % 2 === 0) {
      ta = await time(a);
      tb = await time(b);
    } else {
      tb = await time(b);
      ta = await time(a);
    }
    ratios.push(tb / ta);
  }
  return median(ratios) - 1;
}
