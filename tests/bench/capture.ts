import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { convertCheckpoint, Gpt2Runner, type ModelManifest, steeringInput } from '@loupe/capture';
import { blockHook } from '@loupe/common';
import ort from 'onnxruntime-node';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { matmulRate } from './matmul-rate.js';
import { fmt, medianSeconds, printTable } from './measure.js';

const BATCH = 8;
const SEQ = 128;

/** Model FLOPs per token at sequence length `seq`: projections, attention as computed (full T×T), logits. */
export function flopsPerToken(dims: ModelManifest['dims'], seq: number, logits: boolean): number {
  const { dModel: d, dMlp, nLayer, vocabSize } = dims;
  const perLayer = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * dMlp + 2 * 2 * seq * d;
  return nLayer * perLayer + (logits ? 2 * d * vocabSize : 0);
}

export async function captureBench(): Promise<void> {
  const checkpoint = await ensureFixture(FIXTURES.gpt2Small);
  const modelDir = path.join(os.tmpdir(), 'loupe-bench-gpt2-small');
  await convertCheckpoint(checkpoint, modelDir, { force: true });
  const rate = await matmulRate();
  const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 0 });
  const { dims } = runner.manifest;
  const tokens = BATCH * SEQ;
  const ids = Array.from({ length: BATCH }, (_, b) =>
    Array.from({ length: SEQ }, (_, t) => (b * 1000 + t * 37) % dims.vocabSize),
  );

  // (a) the raw forward: ONNX Runtime directly, logits only, no Loupe code in the way
  const raw = await ort.InferenceSession.create(path.join(modelDir, 'model.onnx'), {
    intraOpNumThreads: 0,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(tokens).fill(1n), [BATCH, SEQ]),
    ...Object.fromEntries(
      Array.from({ length: dims.nLayer }, (_, layer) => [
        steeringInput(layer),
        new ort.Tensor('float32', new Float32Array(dims.dModel), [1, 1, dims.dModel]),
      ]),
    ),
  };
  const runs = 5;
  const rawSeconds = await medianSeconds(() => raw.run(feeds, ['logits']), runs);
  const rawNoLogitsSeconds = await medianSeconds(() => raw.run(feeds, ['ln_final.hook_normalized']), runs);
  await raw.release();

  // (b) Activations: residual and MLP hooks of every layer, through the runner (batching, unpadding)
  const hooks: string[] = [];
  for (let layer = 0; layer < dims.nLayer; layer++) {
    hooks.push(
      blockHook(layer, 'hook_resid_pre'),
      blockHook(layer, 'hook_resid_post'),
      blockHook(layer, 'mlp.hook_post'),
    );
  }
  const withLogits = await medianSeconds(
    () => runner.forward(ids.map((row) => ({ ids: row, hooks, logits: true }))),
    runs,
  );
  const hooksOnly = await medianSeconds(
    () => runner.forward(ids.map((row) => ({ ids: row, hooks, logits: false }))),
    runs,
  );
  await runner.close();

  const flopsLogits = flopsPerToken(dims, SEQ, true);
  const flopsTrunk = flopsPerToken(dims, SEQ, false);
  const tps = (s: number) => tokens / s;
  const pct = (x: number) => `${fmt(100 * x)}%`;
  printTable(
    `GPT-2 small shape (${fmt(dims.nLayer)} layers, d=${dims.dModel}), CPU, batch ${BATCH} × ${SEQ} tokens`,
    [
      {
        measure: 'matmul rate (ORT, 1024×768 · 768×3072, weight prepacked)',
        value: `${fmt(rate / 1e9, 1)} GFLOP/s`,
        reference: '-',
        ratio: '-',
      },
      {
        measure: 'model FLOPs per token (with logits / trunk only)',
        value: `${fmt(flopsLogits / 1e9, 3)} / ${fmt(flopsTrunk / 1e9, 3)} GFLOP`,
        reference: '-',
        ratio: '-',
      },
      {
        measure: '(a) raw ORT forward, logits only',
        value: `${fmt(tps(rawSeconds))} tok/s`,
        reference: `matmul rate → ${fmt(rate / flopsLogits)} tok/s`,
        ratio: pct((tps(rawSeconds) * flopsLogits) / rate),
      },
      {
        measure: '(b) Activations: resid_pre/resid_post/mlp.hook_post × every layer + logits',
        value: `${fmt(tps(withLogits))} tok/s`,
        reference: '(a)',
        ratio: `cost +${pct(withLogits / rawSeconds - 1)}`,
      },
      {
        measure: '(b′) same hooks, no logits (trunk graph)',
        value: `${fmt(tps(hooksOnly))} tok/s`,
        reference: `matmul rate → ${fmt(rate / flopsTrunk)} tok/s`,
        ratio: pct((tps(hooksOnly) * flopsTrunk) / rate),
      },
      {
        measure: 'full graph fetching ln_final only (does ORT skip the unfetched logits?)',
        value: `${fmt(tps(rawNoLogitsSeconds))} tok/s`,
        reference: '(a)',
        ratio: `${fmt(rawSeconds / rawNoLogitsSeconds, 2)}× faster`,
      },
    ],
  );
  await fs.rm(modelDir, { recursive: true, force: true });
}
