import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GraphBuilder } from '@loupe/common';
import ort from 'onnxruntime-node';
import { medianSeconds } from './measure.js';

/**
 * The machine's float32 matrix-multiply rate under ONNX Runtime: [m, k] · [k, n] with the weight as an
 * initializer (prepacked), the same situation as every GPT-2 projection. The reference for "fraction of
 * peak" figures.
 */
export async function matmulRate(m = 1024, k = 768, n = 3072, threads = 0): Promise<number> {
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
    intraOpNumThreads: threads,
    graphOptimizationLevel: 'all',
  });
  const input = new ort.Tensor(
    'float32',
    Float32Array.from({ length: m * k }, (_, i) => (i % 13) / 13),
    [m, k],
  );
  const seconds = await medianSeconds(() => session.run({ x: input }), 15, 3);
  await session.release();
  return (2 * m * k * n) / seconds;
}
