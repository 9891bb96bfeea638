import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { blockHook } from '@loupe/common';
import { activationPatching, convertCheckpoint, Gpt2Runner, neutralControlFeeds } from '@loupe/model';
import ort from 'onnxruntime-node';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { interleaved, type MatmulProbe, pairedSlowdown } from './matmul-rate.js';
import { fmt, pct, printTable } from './measure.js';

const BATCH = 4;
const SEQ = 64;

/**
 * Research tools on the GPT-2 small shape: what the attention hooks and patch inputs cost a forward
 * that asks for none of them (the capture section's (a) and (b), on a graph converted with them and
 * one converted without them), and an activation patching sweep of 12 layers × 15 positions.
 */
export async function researchBench(probe: MatmulProbe): Promise<void> {
  const checkpoint = await ensureFixture(FIXTURES.gpt2Small);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-bench-research-'));
  const withDir = path.join(root, 'with');
  const withoutDir = path.join(root, 'without');
  await convertCheckpoint(checkpoint, withDir);
  await convertCheckpoint(checkpoint, withoutDir, { patching: false });
  const settings = { device: 'cpu' as const, intraOpThreads: 0 };
  const [withRunner, withoutRunner] = await Promise.all([
    Gpt2Runner.load(withDir, settings),
    Gpt2Runner.load(withoutDir, settings),
  ]);
  const { dims } = withRunner.manifest;
  const tokens = BATCH * SEQ;
  const ids = Array.from({ length: BATCH }, (_, b) =>
    Array.from({ length: SEQ }, (_, t) => (b * 1000 + t * 37) % dims.vocabSize),
  );
  const open = (dir: string) =>
    ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
      intraOpNumThreads: 0,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
  const [rawWith, rawWithout] = [await open(withDir), await open(withoutDir)];
  // neutral feeds cover the patch inputs; ONNX Runtime drops those the older graph does not take
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(tokens).fill(1n), [BATCH, SEQ]),
    ...neutralControlFeeds(dims, BATCH),
  };
  const aWith = await interleaved(probe, () => rawWith.run(feeds, ['logits']));
  const aWithout = await interleaved(probe, () => rawWithout.run(feeds, ['logits']));
  const aCost = await pairedSlowdown(
    () => rawWithout.run(feeds, ['logits']),
    () => rawWith.run(feeds, ['logits']),
  );
  const hooks: string[] = [];
  for (let layer = 0; layer < dims.nLayer; layer++)
    hooks.push(
      blockHook(layer, 'hook_resid_pre'),
      blockHook(layer, 'hook_resid_post'),
      blockHook(layer, 'mlp.hook_post'),
    );
  const forwardOf = (runner: Gpt2Runner) => () =>
    runner.forward(ids.map((row) => ({ ids: row, hooks, logits: true })));
  const bWith = await interleaved(probe, forwardOf(withRunner));
  const bWithout = await interleaved(probe, forwardOf(withoutRunner));
  const bCost = await pairedSlowdown(forwardOf(withoutRunner), forwardOf(withRunner));
  await rawWith.release();
  await rawWithout.release();

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
  await withoutRunner.close();
  await fs.rm(root, { recursive: true, force: true });

  const tps = (s: number) => tokens / s;
  printTable(`Research tools, GPT-2 small shape (${dims.nLayer} layers, d=${dims.dModel}), CPU`, [
    {
      measure: `(a) raw ORT forward, logits, batch ${BATCH} × ${SEQ}, graph with attention hooks + patch inputs`,
      value: `${fmt(tps(aWith.seconds))} tok/s`,
      reference: `the same graph without them: ${fmt(tps(aWithout.seconds))} tok/s`,
      ratio: `unrequested cost ${pct(aCost)} (paired rounds)`,
    },
    {
      measure: '(b) Activations: resid_pre, resid_post, mlp.hook_post × 12 + logits, same two graphs',
      value: `${fmt(tps(bWith.seconds))} tok/s`,
      reference: `without: ${fmt(tps(bWithout.seconds))} tok/s`,
      ratio: `unrequested cost ${pct(bCost)} (paired rounds)`,
    },
    {
      measure: 'activation patching sweep: resid_pre, 12 layers × 15 positions (180 patched runs + 2)',
      value: `${fmt(sweep.seconds, 2)} s`,
      reference: `one 15-token forward with logits: ${fmt(single.seconds * 1000, 1)} ms`,
      ratio: `${fmt(sweep.seconds / single.seconds, 0)}× one forward (182 runs, batched 32 per pass)`,
    },
  ]);
}
