import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { activationPatching, convertCheckpoint, Gpt2Runner, neutralControlFeeds } from '@loupe/model';
import ort from 'onnxruntime-node';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { interleaved, type MatmulProbe, pairedSlowdown } from './matmul-rate.js';
import { fmt, pct, printTable } from './measure.js';

const BATCH = 4;
const SEQ = 64;

/**
 * Research tools on the GPT-2 small shape: the research graph (attention hooks, patch inputs) against
 * the plain one on plain work, and an activation patching sweep of 12 layers × 15 positions.
 */
export async function researchBench(probe: MatmulProbe): Promise<void> {
  const checkpoint = await ensureFixture(FIXTURES.gpt2Small);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-bench-research-'));
  const modelDir = path.join(root, 'gpt2-small');
  await convertCheckpoint(checkpoint, modelDir);
  const withRunner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 0 });
  const { dims } = withRunner.manifest;
  const tokens = BATCH * SEQ;
  const ids = Array.from({ length: BATCH }, (_, b) =>
    Array.from({ length: SEQ }, (_, t) => (b * 1000 + t * 37) % dims.vocabSize),
  );
  const open = (file: string) =>
    ort.InferenceSession.create(path.join(modelDir, file), {
      intraOpNumThreads: 0,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
  // (a) and (b) run model.onnx, the same operations as the graph converted before research graphs existed
  // (a test checks it has no attention outputs and no patch inputs): unrequested attention hooks cost
  // nothing by construction. What the research graph would cost the same plain work, for comparison:
  const [plain, researchGraph] = [await open('model.onnx'), await open('model-research.onnx')];
  // neutral feeds cover the patch inputs; ONNX Runtime drops those the plain graph does not take
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(tokens).fill(1n), [BATCH, SEQ]),
    ...neutralControlFeeds(dims, BATCH),
  };
  const aPlain = await interleaved(probe, () => plain.run(feeds, ['logits']));
  const aResearch = await interleaved(probe, () => researchGraph.run(feeds, ['logits']));
  const researchCost = await pairedSlowdown(
    () => plain.run(feeds, ['logits']),
    () => researchGraph.run(feeds, ['logits']),
  );
  await plain.release();
  await researchGraph.release();

  // the sweep: 15-token prompts, resid_pre at 12 layers × 15 positions = 180 patched runs
  const clean = Array.from({ length: 15 }, (_, t) => (t * 131 + 7) % dims.vocabSize);
  const corrupted = clean.map((id, t) => (t === 4 ? (id + 1) % dims.vocabSize : id));
  const sweepOnce = () =>
    activationPatching(withRunner, { clean, corrupted, answer: 11, wrong: 13, hook: 'resid_pre' });
  const sweep = await interleaved(probe, sweepOnce, 3);
  const single = await interleaved(probe, () =>
    withRunner.forward([{ ids: corrupted, hooks: [], logits: true }]),
  );
  await withRunner.close();
  await fs.rm(root, { recursive: true, force: true });

  const tps = (s: number) => tokens / s;
  printTable(`Research tools, GPT-2 small shape (${dims.nLayer} layers, d=${dims.dModel}), CPU`, [
    {
      measure: `raw ORT forward, logits, batch ${BATCH} × ${SEQ}: model.onnx (what (a) and (b) run)`,
      value: `${fmt(tps(aPlain.seconds))} tok/s`,
      reference: `model-research.onnx on the same work: ${fmt(tps(aResearch.seconds))} tok/s`,
      ratio: `the research graph costs ${pct(researchCost)} more (paired rounds); plain requests never open it`,
    },
    {
      measure: 'activation patching sweep: resid_pre, 12 layers × 15 positions (180 patched runs + 2)',
      value: `${fmt(sweep.seconds, 2)} s`,
      reference: `one 15-token forward with logits: ${fmt(single.seconds * 1000, 1)} ms`,
      ratio: `${fmt(sweep.seconds / single.seconds, 0)}× one forward (182 runs, batched 32 per pass)`,
    },
  ]);
}
