import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng, writeSafetensors } from '@loupe/common';
import { connect, runMigrations, spawnEmbeddedPostgres } from '@loupe/common/db';
import { convertCheckpoint, Gpt2Runner } from '@loupe/model';
import {
  nearestFeatures,
  openActivationSource,
  randomSae,
  SAE_MIGRATIONS_DIR,
  SAE_SCHEMA,
  SaeEncoder,
  saveFeatures,
  trainSae,
} from '@loupe/sae';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { median } from './matmul-rate.js';
import { fmt, printTable } from './measure.js';

const HOOK = 'blocks.6.hook_resid_pre';
const TEXT_TOKENS = 64;
const REPS = 15;
/** windows of 64 tokens captured to train the SAE that the search is measured on */
const TRAIN_WINDOWS = 192;
const TRAINED_WIDTH = 8192;
const QUERIES = 50;

/**
 * "Which features fire on this text" for one 64-token text, next to the model forward it needs (the
 * reference), at GPT-2-small shape with a 24,576-wide TopK SAE; then nearest-feature search on an SAE
 * trained here on that model's activations (structured directions, unlike the random ones of the
 * search bench), recall@10 of HNSW against the exact scan.
 */
export async function saeEncodeBench(): Promise<void> {
  const checkpoint = await ensureFixture(FIXTURES.gpt2Small);
  const modelDir = path.join(os.tmpdir(), 'loupe-bench-gpt2-small');
  await convertCheckpoint(checkpoint, modelDir, { force: true });
  const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 0 });
  const d = runner.manifest.dims.dModel;
  const rng = new Rng(11);
  try {
    const ids = Array.from({ length: TEXT_TOKENS }, () =>
      Math.floor(rng.nextUniform() * runner.manifest.dims.vocabSize),
    );
    const forward = async () =>
      (await runner.forward([{ ids, hooks: [HOOK], logits: false }]))[0].hooks.get(HOOK)!;
    const sae = randomSae('topk', d, 24_576, 7, { k: 32 });
    const encoder = await SaeEncoder.open(sae, { device: 'cpu', intraOpThreads: 0 });
    const x = await forward();
    await encoder.encode(x, TEXT_TOKENS);
    const forwardMs: number[] = [];
    const encodeMs: number[] = [];
    for (let r = 0; r < REPS; r++) {
      let t0 = process.hrtime.bigint();
      const acts = await forward();
      forwardMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      t0 = process.hrtime.bigint();
      await encoder.encode(acts, TEXT_TOKENS);
      encodeMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    await encoder.close();
    const f = median(forwardMs);
    const e = median(encodeMs);
    const rows = [
      {
        measure: `encode one ${TEXT_TOKENS}-token text: forward to ${HOOK} + SAE encode (24,576 latents)`,
        value: `${fmt(f + e, 1)} ms (forward ${fmt(f, 1)} + encode ${fmt(e, 1)}, medians)`,
        reference: `model forward alone ${fmt(f, 1)} ms`,
        ratio: `SAE adds ${fmt((100 * e) / f)}%`,
      },
      ...(await trainedSaeSearch(runner, rng)),
    ];
    printTable('SAE inference and search on a trained SAE (GPT-2-small shape, CPU)', rows);
  } finally {
    await runner.close();
  }
}

async function trainedSaeSearch(runner: Gpt2Runner, rng: Rng) {
  const d = runner.manifest.dims.dModel;
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-bench-trained-'));
  const db = await spawnEmbeddedPostgres({ dataDir: path.join(scratch, 'pg') });
  const sql = connect(db.url, { schema: SAE_SCHEMA });
  try {
    const windows = Array.from({ length: TRAIN_WINDOWS }, () =>
      Array.from({ length: 64 }, () => Math.floor(rng.nextUniform() * runner.manifest.dims.vocabSize)),
    );
    const vectors = new Float32Array(TRAIN_WINDOWS * 64 * d);
    for (let i = 0; i < windows.length; i += 8) {
      const results = await runner.forward(
        windows.slice(i, i + 8).map((w) => ({ ids: w, hooks: [HOOK], logits: false })),
      );
      for (const [j, result] of results.entries()) vectors.set(result.hooks.get(HOOK)!, (i + j) * 64 * d);
    }
    const file = path.join(scratch, 'activations.safetensors');
    await writeSafetensors(
      file,
      [{ name: 'activations', dtype: 'F32', shape: [TRAIN_WINDOWS * 64, d], data: vectors }],
      {},
    );
    const t0 = process.hrtime.bigint();
    const trained = await trainSae(await openActivationSource(file), {
      architecture: 'topk',
      width: TRAINED_WIDTH,
      k: 32,
      steps: 300,
      batchSize: 1024,
      seed: 1,
      shuffleCapacity: 16_384,
      heldOutFraction: 0.02,
      normaliseVectors: 4096,
      deadWindowTokens: 100_000,
      device: 'cpu',
      intraOpThreads: 0,
    });
    const trainSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await runMigrations(sql, { schema: SAE_SCHEMA, dir: SAE_MIGRATIONS_DIR });
    const W_dec = trained.sae.weights.W_dec;
    await saveFeatures(
      sql,
      {
        id: 'trained',
        model: 'bench',
        hook: HOOK,
        architecture: 'topk',
        dIn: d,
        dSae: TRAINED_WIDTH,
        cfg: {},
        weightsPath: '-',
      },
      W_dec,
    );
    // queries: held-out activations, the question users ask ("which features point like this vector")
    const queries = Array.from({ length: QUERIES }, (_, q) =>
      vectors.subarray(q * 131 * d, (q * 131 + 1) * d),
    );
    const search = async (options: { exact?: boolean; efSearch?: number }) => {
      const times: number[] = [];
      const found: number[][] = [];
      for (const query of queries) {
        const s = process.hrtime.bigint();
        found.push(
          (await nearestFeatures(sql, query, { k: 10, saeId: 'trained', ...options })).map((n) => n.index),
        );
        times.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
      return { ms: median(times), found };
    };
    const exact = await search({ exact: true });
    const rows = [
      {
        measure: `train TopK SAE (width ${fmt(TRAINED_WIDTH)}, k 32, 300 steps × 1,024) on ${fmt(TRAIN_WINDOWS * 64)} captured vectors`,
        value: `${fmt(trainSeconds, 1)} s`,
        reference: `final loss ${fmt(trained.final.loss, 3)}, L0 ${fmt(trained.final.l0, 1)}, dead ${fmt(100 * trained.final.deadFraction, 1)}%`,
        ratio: '-',
      },
      {
        measure: 'trained SAE: exact scan, nearest 10',
        value: `${fmt(exact.ms, 1)} ms`,
        reference: '-',
        ratio: 'recall 1.00',
      },
    ];
    for (const efSearch of [40, 100, 400, 1000]) {
      const approx = await search({ efSearch });
      const hits = approx.found.reduce(
        (n, f, q) => n + f.filter((i) => exact.found[q].includes(i)).length,
        0,
      );
      rows.push({
        measure: `trained SAE: HNSW, nearest 10, ef_search ${efSearch}`,
        value: `${fmt(approx.ms, 1)} ms`,
        reference: 'exact scan',
        ratio: `recall@10 ${fmt(hits / (QUERIES * 10), 2)}`,
      });
    }
    return rows;
  } finally {
    await sql.end();
    await db.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}
