import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { convertCheckpoint, Gpt2Runner } from '@loupe/model';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { fmt, pct, printTable } from './measure.js';

const BATCH = 8;
const SEQ = 128;
const PASSES = 3;

/**
 * How long the event loop stands still while a forward pass runs (GPT-2-small shape, 8 × 128 tokens
 * with logits), against the pass's own length: before sessions ran on their own threads the loop's
 * longest delay was the whole pass; now it is what the scheduler gives the main thread.
 */
export async function eventLoopBench(): Promise<void> {
  const checkpoint = await ensureFixture(FIXTURES.gpt2Small);
  const modelDir = path.join(os.tmpdir(), `loupe-bench-gpt2-small-loop-${process.pid}`);
  await convertCheckpoint(checkpoint, modelDir, { force: true });
  const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 0 });
  const { vocabSize } = runner.manifest.dims;
  const requests = Array.from({ length: BATCH }, (_, b) => ({
    ids: Array.from({ length: SEQ }, (_, t) => (b * 1000 + t * 37) % vocabSize),
    hooks: ['blocks.6.hook_resid_post'],
    logits: true,
  }));
  await runner.forward(requests); // opens the session
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const start = performance.now();
  for (let i = 0; i < PASSES; i++) await runner.forward(requests);
  const passMs = (performance.now() - start) / PASSES;
  delay.disable();
  await runner.close();
  await fs.rm(modelDir, { recursive: true, force: true });
  const maxMs = delay.max / 1e6;
  printTable(`Event loop during forward passes (GPT-2 small shape, ${BATCH} × ${SEQ} tokens + logits, CPU)`, [
    {
      measure: `longest event-loop delay over ${PASSES} passes (median delay)`,
      value: `${fmt(maxMs)} ms (${fmt(delay.percentile(50) / 1e6, 1)} ms)`,
      reference: `one pass: ${fmt(passMs)} ms`,
      ratio: `${pct(maxMs / passMs)} of a pass`,
    },
  ]);
}
