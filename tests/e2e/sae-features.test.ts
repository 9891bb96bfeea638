import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng, SafetensorsReader } from '@loupe/common';
import { connect, type Sql } from '@loupe/common/db';
import { readUnembedding } from '@loupe/model';
import { encode, featureRecords, featureStats, SAE_SCHEMA, type Sae, writeSaeLens } from '@loupe/sae';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { convertedFixture } from '../support/model.js';
import { runCli } from '../support/process.js';

// `loupe capture` then `loupe sae import` and `loupe sae features` as real processes: statistics,
// records and logit tokens of a random SAE over real activations of the tiny model, checked against the
// TS encode of the shards and a float64 product with wte.
const HOOK = 'blocks.1.hook_resid_pre';
const D_SAE = 24;

let db: TestDatabase;
let sql: Sql;
let scratch: string;
let modelDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-features-e2e-'));
  modelDir = (await convertedFixture(FIXTURES.tiny)).modelDir;
  db = await startTestDatabase();
  sql = connect(db.url, { schema: SAE_SCHEMA });
  env = {
    LOUPE_DATA_DIR: path.join(scratch, 'data'),
    ...databaseEnv(db),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
  };
});

afterAll(async () => {
  await sql?.end();
  await db?.stop();
});

function randomSae(dIn: number): Sae {
  const rng = Rng.derive(21, 'test/e2e-features');
  return {
    config: {
      architecture: 'standard',
      dIn,
      dSae: D_SAE,
      hookName: HOOK,
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: {
      W_enc: rng.normalFloat32(dIn * D_SAE, 0, 1 / Math.sqrt(dIn)),
      b_enc: rng.normalFloat32(D_SAE, -0.3, 0.3),
      W_dec: rng.normalFloat32(D_SAE * dIn, 0, 1),
      b_dec: new Float32Array(dIn),
    },
  };
}

async function cli(args: string[]): Promise<Record<string, unknown>> {
  const { code, stdout, stderr } = await runCli(args, env);
  expect(stderr).not.toMatch(/internal error/);
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout);
}

describe('loupe sae features', () => {
  it('computes statistics, records and logit tokens over a capture job', async () => {
    const captured = await cli([
      'capture',
      '--model',
      modelDir,
      '--hooks',
      HOOK,
      '--max-tokens',
      '2000',
      '--shard-windows',
      '8',
    ]);
    const jobDir = path.join(scratch, 'data', 'capture', String(captured.job));
    const sae = randomSae(64);
    await writeSaeLens(path.join(scratch, 'saelens'), sae);
    await cli(['sae', 'import', path.join(scratch, 'saelens'), '--id', 'tiny-res1']);

    const before = await runCli(['sae', 'features', 'tiny-res1', '--activations', scratch], env);
    expect(before.code).not.toBe(0);
    expect(before.stderr).toMatch(/no activation shards for hook blocks.1.hook_resid_pre/);

    const unknown = await runCli(['sae', 'features', 'tiny-res1', '--activations', 'no-such-job'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(
      /no such file or folder, and no capture job, "no-such-job".*jobs in .*capture: /s,
    );

    // the job id that `loupe capture` printed names the job's folder
    const summary = await cli([
      'sae',
      'features',
      'tiny-res1',
      '--activations',
      String(captured.job),
      '--model',
      modelDir,
    ]);
    expect(summary).toMatchObject({ saeId: 'tiny-res1', tokens: captured.tokens, logitTokens: true });

    // reference: TS encode of every shard's activations
    const shardDir = path.join(jobDir, 'shards', HOOK);
    let tokens = 0;
    const fired = new Array(D_SAE).fill(0);
    const max = new Array(D_SAE).fill(0);
    const windowIds = new Map<number, number[]>();
    for (const name of (await fs.readdir(shardDir)).sort()) {
      const reader = await SafetensorsReader.open(path.join(shardDir, name));
      const x = await reader.readFloat32('activations');
      const ids = (await reader.readArray('token_ids')) as Int32Array;
      const index = (await reader.readArray('window_index')) as Int32Array;
      const offsets = (await reader.readArray('window_offsets')) as Int32Array;
      await reader.close();
      for (const [i, w] of index.entries())
        windowIds.set(w, Array.from(ids.subarray(offsets[i], offsets[i + 1])));
      const rows = ids.length;
      const acts = encode(sae, x, rows);
      tokens += rows;
      for (let r = 0; r < rows; r++)
        for (let f = 0; f < D_SAE; f++) {
          const v = acts[r * D_SAE + f];
          if (v > 0) fired[f]++;
          max[f] = Math.max(max[f], v);
        }
    }
    expect(summary.tokens).toBe(tokens);

    const { weights: wte, vocabSize } = await readUnembedding(modelDir);
    for (const f of [0, 5, D_SAE - 1]) {
      const stats = await featureStats(sql, 'tiny-res1', f);
      // ReLU gates of pre-activations within float32 rounding of 0 could differ; none do here
      expect(stats.frequency).toBe(fired[f] / tokens);
      expect(Math.abs(stats.maxActivation - max[f])).toBeLessThan(1e-4);
      expect(stats.histogram).toHaveLength(32);
      // logit tokens: each id's float64 logit equals its value, and the positives are the largest
      const logit = (v: number) => {
        let s = 0;
        for (let j = 0; j < 64; j++) s += sae.weights.W_dec[f * 64 + j] * wte[v * 64 + j];
        return s;
      };
      const all = Array.from({ length: vocabSize }, (_, v) => logit(v)).sort((a, b) => b - a);
      expect(stats.positiveLogits).toHaveLength(10);
      for (const [r, t] of stats.positiveLogits.entries()) {
        expect(Math.abs(logit(t.id) - t.value)).toBeLessThan(1e-4);
        expect(Math.abs(t.value - all[r])).toBeLessThan(1e-4);
      }
      for (const [r, t] of stats.negativeLogits.entries())
        expect(Math.abs(t.value - all.at(-1 - r)!)).toBeLessThan(1e-4);

      const records = await featureRecords(sql, env.LOUPE_DATA_DIR, 'tiny-res1', f);
      expect(records.top.length).toBeGreaterThan(0);
      expect(Math.abs(Math.max(...records.top[0].values) - max[f])).toBeLessThan(1e-4);
      for (const w of [...records.top, ...records.random]) expect(w.ids).toEqual(windowIds.get(w.window));
    }
  }, 120_000);
});
