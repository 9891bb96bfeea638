import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA, prepareCaptureJob, runCaptureJob } from '@loupe/capture';
import { blockHook } from '@loupe/common';
import { connect, runMigrations, spawnEmbeddedPostgres } from '@loupe/common/db';
import { convertCheckpoint, Gpt2Runner, type ModelManifest, neutralControlFeeds } from '@loupe/model';
import ort from 'onnxruntime-node';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { interleaved, type MatmulProbe, pairedSlowdown } from './matmul-rate.js';
import { fmt, pct, printTable } from './measure.js';

const BATCH = 8;
const SEQ = 128;
/**
 * Capture jobs: long enough that a job's fixed cost (the records pass over a 256-window sample, the
 * record files and rows of 36,864 neurons) is a real job's share of it, not most of the figure.
 */
const JOB_TOKENS = 65_536;
const LAYER_JOB_TOKENS = 16_384;

/** Model FLOPs per token at sequence length `seq`: projections, attention as computed (full T×T), logits. */
export function flopsPerToken(dims: ModelManifest['dims'], seq: number, logits: boolean): number {
  const { dModel: d, dMlp, nLayer, vocabSize } = dims;
  const perLayer = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * dMlp + 2 * 2 * seq * d;
  return nLayer * perLayer + (logits ? 2 * d * vocabSize : 0);
}

export async function captureBench(probe: MatmulProbe): Promise<void> {
  const checkpoint = await ensureFixture(FIXTURES.gpt2Small);
  const modelDir = path.join(os.tmpdir(), 'loupe-bench-gpt2-small');
  await convertCheckpoint(checkpoint, modelDir, { force: true });
  const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 0 });
  const { dims } = runner.manifest;
  const tokens = BATCH * SEQ;
  const ids = Array.from({ length: BATCH }, (_, b) =>
    Array.from({ length: SEQ }, (_, t) => (b * 1000 + t * 37) % dims.vocabSize),
  );
  const flopsLogits = flopsPerToken(dims, SEQ, true);
  const flopsTrunk = flopsPerToken(dims, SEQ, false);

  // (a) the raw forward: ONNX Runtime directly, logits only, no Loupe code in the way
  const raw = await ort.InferenceSession.create(path.join(modelDir, 'model.onnx'), {
    intraOpNumThreads: 0,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(tokens).fill(1n), [BATCH, SEQ]),
    ...neutralControlFeeds(dims, BATCH),
  };
  const a = await interleaved(probe, () => raw.run(feeds, ['logits']));
  const lnOnly = await interleaved(probe, () => raw.run(feeds, ['ln_final.hook_normalized']));

  // (b) Activations: residual and MLP hooks of every layer, through the runner (batching, unpadding)
  const hooks: string[] = [];
  for (let layer = 0; layer < dims.nLayer; layer++) {
    hooks.push(
      blockHook(layer, 'hook_resid_pre'),
      blockHook(layer, 'hook_resid_post'),
      blockHook(layer, 'mlp.hook_post'),
    );
  }
  const b = await interleaved(probe, () =>
    runner.forward(ids.map((row) => ({ ids: row, hooks, logits: true }))),
  );
  const bTrunk = await interleaved(probe, () =>
    runner.forward(ids.map((row) => ({ ids: row, hooks, logits: false }))),
  );
  // the hooks' cost measured directly: (a) and (b) back to back in each round
  const hooksCost = await pairedSlowdown(
    () => raw.run(feeds, ['logits']),
    () => runner.forward(ids.map((row) => ({ ids: row, hooks, logits: true }))),
  );
  await raw.release();

  // (c) a capture job end to end on the bundled corpus: tokenize, forward, shards for every hook above,
  // neuron records for every mlp.hook_post, checkpoints, the records pass and the database writes
  const rateBefore = await probe.once();
  const job = await captureJobSeconds(runner, hooks, JOB_TOKENS);
  const rateAfter = await probe.once();
  // (b) again right after the job: the job is compared with (b) measured on either side of it, in
  // plain tokens per second, as well as scaled by the matmul rate
  const bAfter = await interleaved(probe, () =>
    runner.forward(ids.map((row) => ({ ids: row, hooks, logits: true }))),
  );

  // (c1) the everyday job: one layer (its neurons and its residual stream), against Activations on
  // the same two hooks
  const layerHooks = ['blocks.6.mlp.hook_post', 'blocks.6.hook_resid_pre'];
  const bLayer = await interleaved(probe, () =>
    runner.forward(ids.map((row) => ({ ids: row, hooks: layerHooks, logits: false }))),
  );
  const layerRateBefore = await probe.once();
  const layerJob = await captureJobSeconds(runner, layerHooks, LAYER_JOB_TOKENS);
  const layerRate = (layerRateBefore + (await probe.once())) / 2;
  await runner.close();
  await fs.rm(modelDir, { recursive: true, force: true });

  const tps = (s: number) => tokens / s;
  const peak = (flops: number, r: { rate: number }) =>
    `${fmt(r.rate / 1e9)} GFLOP/s → ${fmt(r.rate / flops)} tok/s`;
  const ofPeak = (s: number, flops: number, r: { rate: number }) => pct((tps(s) * flops) / r.rate);
  const jobRate = (rateBefore + rateAfter) / 2;
  /** A measurement's tokens per second scaled to the matmul rate measured around the job. */
  const atJobRate = (r: { seconds: number; rate: number }) => (tps(r.seconds) * jobRate) / r.rate;
  printTable(
    `GPT-2 small shape (${dims.nLayer} layers, d=${dims.dModel}), CPU, batch ${BATCH} × ${SEQ} tokens`,
    [
      {
        measure: 'model FLOPs per token (with logits / trunk only)',
        value: `${fmt(flopsLogits / 1e9, 3)} / ${fmt(flopsTrunk / 1e9, 3)} GFLOP`,
        reference: 'matmul 1024×768·768×3072, ORT, measured beside each row',
        ratio: 'of peak',
      },
      {
        measure: '(a) raw ORT forward, logits only',
        value: `${fmt(tps(a.seconds))} tok/s`,
        reference: peak(flopsLogits, a),
        ratio: ofPeak(a.seconds, flopsLogits, a),
      },
      {
        measure: '(b) Activations: resid_pre, resid_post, mlp.hook_post × 12 layers + logits',
        value: `${fmt(tps(b.seconds))} tok/s`,
        reference: peak(flopsLogits, b),
        ratio: `${ofPeak(b.seconds, flopsLogits, b)}; hooks cost ${pct(hooksCost)} over (a) (paired rounds)`,
      },
      {
        measure: "(b') the same hooks without logits (trunk graph)",
        value: `${fmt(tps(bTrunk.seconds))} tok/s`,
        reference: peak(flopsTrunk, bTrunk),
        ratio: ofPeak(bTrunk.seconds, flopsTrunk, bTrunk),
      },
      {
        measure: `(c) capture job end to end, same hooks, ${fmt(job.tokens)} tokens (shards, records, DB)`,
        value: `${fmt(job.tokens / job.seconds)} tok/s`,
        reference: `(b) / (b') at the same rate: ${fmt(atJobRate(b))} / ${fmt(atJobRate(bTrunk))} tok/s`,
        ratio: `${pct(job.tokens / job.seconds / atJobRate(b))} of (b), the target (≥ 85%); ${pct(job.tokens / job.seconds / atJobRate(bTrunk))} of (b')`,
      },
      {
        measure: '    the same job against (b) measured just before and just after it, plain tok/s',
        value: `${fmt(job.tokens / job.seconds)} tok/s`,
        reference: `(b) before / after: ${fmt(tps(b.seconds))} / ${fmt(tps(bAfter.seconds))} tok/s`,
        ratio: `${pct(job.tokens / job.seconds / ((tps(b.seconds) + tps(bAfter.seconds)) / 2))} of their mean`,
      },
      {
        measure: '    of which the records pass (256-window sample read back, record files and rows)',
        value: `${fmt(job.recordsSeconds, 1)} s`,
        reference: '-',
        ratio: '-',
      },
      {
        measure: `(c1) capture job on one layer (${layerHooks.join(', ')}), ${fmt(layerJob.tokens)} tokens`,
        value: `${fmt(layerJob.tokens / layerJob.seconds)} tok/s`,
        reference: `Activations on those hooks at the same rate: ${fmt((tps(bLayer.seconds) * layerRate) / bLayer.rate)} tok/s`,
        ratio: pct(layerJob.tokens / layerJob.seconds / ((tps(bLayer.seconds) * layerRate) / bLayer.rate)),
      },
      {
        measure: 'full graph fetching ln_final only (does ORT skip unfetched logits?)',
        value: `${fmt(tps(lnOnly.seconds))} tok/s`,
        reference: '(a)',
        ratio: `${fmt((a.seconds * a.rate) / (lnOnly.seconds * lnOnly.rate), 2)}× (a)'s speed`,
      },
    ],
  );
}

/** One capture job over the bundled corpus on a throwaway embedded Postgres, timed end to end. */
export async function captureJobSeconds(
  runner: Gpt2Runner,
  hooks: string[],
  maxTokens: number,
): Promise<{ seconds: number; tokens: number; recordsSeconds: number }> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-bench-capture-'));
  const db = await spawnEmbeddedPostgres({ dataDir: path.join(scratch, 'pg') });
  const sql = connect(db.url, { schema: CAPTURE_SCHEMA });
  try {
    await runMigrations(sql, { schema: CAPTURE_SCHEMA, dir: CAPTURE_MIGRATIONS_DIR });
    const start = process.hrtime.bigint();
    let recordsStart = 0n;
    const { job } = await prepareCaptureJob(sql, runner, { dataset: 'default', hooks, maxTokens });
    await runCaptureJob(sql, runner, job.id, {
      dataDir: path.join(scratch, 'data'),
      worker: 'bench',
      onProgress: (p) => {
        if (p.windowsDone === p.totalWindows && recordsStart === 0n) recordsStart = process.hrtime.bigint();
      },
    });
    const end = process.hrtime.bigint();
    return {
      seconds: Number(end - start) / 1e9,
      tokens: job.totalTokens,
      recordsSeconds: Number(end - (recordsStart || end)) / 1e9,
    };
  } finally {
    await sql.end();
    await db.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}
