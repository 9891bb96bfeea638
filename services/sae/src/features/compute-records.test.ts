import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashString, Rng, splitmix32, writeSafetensors } from '@loupe/common';
import { withTestDatabase } from '@loupe/common/testing';
import type { RecordSettings } from '@loupe/records';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from '../format/sae-forward.js';
import type { Sae } from '../format/sae-model.js';
import { writeSaeLens } from '../format/saelens.js';
import { randomSae } from '../infer/random-sae.js';
import { featureRecords, featureStats } from '../store/feature-reads.js';
import { SAE_MIGRATIONS_DIR, SAE_SCHEMA } from '../store/migrations.js';
import { importSae } from '../store/sae-library.js';
import { computeFeatureRecords } from './compute-records.js';

// Records and statistics of a small SAE over a synthetic capture job folder, checked against a brute
// force reference: the TS encode of every window and plain sorts, computed without the accumulator.

const HOOK = 'blocks.0.hook_resid_post';
const D_IN = 8;
const D_SAE = 12;
const LENGTH = 16;
const SHARDS = [10, 10, 7];
const TAIL = 9; // the last window is a short document tail
const SETTINGS: Partial<RecordSettings> = {
  topK: 4,
  randomCount: 5,
  sampleSize: 12,
  quantileEdges: [0, 0.5, 0.9, 1],
  perQuantile: 2,
  histogramBins: 8,
  seed: 3,
};
/** float32 ONNX Runtime vs float64 TS over 8 products of O(1) values: errors are ~1e-6 */
const TOL = 1e-4;

interface RefWindow {
  index: number;
  ids: number[];
  x: Float32Array;
  acts: Float32Array;
}

const db = withTestDatabase({ beforeAll, afterAll }, { schema: SAE_SCHEMA, migrations: SAE_MIGRATIONS_DIR });
let scratch: string;
let sae: Sae;
const windows: RefWindow[] = [];

async function writeJob(dir: string): Promise<void> {
  const rng = Rng.derive(5, 'test/feature-shards');
  let index = 0;
  for (const [shard, count] of SHARDS.entries()) {
    const shardWindows: RefWindow[] = [];
    for (let i = 0; i < count; i++) {
      const length = shard === SHARDS.length - 1 && i === count - 1 ? TAIL : LENGTH;
      const ids = Array.from({ length }, () => rng.nextUint32() % 50257);
      const x = rng.normalFloat32(length * D_IN, 0, 1);
      shardWindows.push({ index: index++, ids, x, acts: encode(sae, x, length) });
    }
    windows.push(...shardWindows);
    const offsets = new Int32Array(count + 1);
    for (const [i, w] of shardWindows.entries()) offsets[i + 1] = offsets[i] + w.ids.length;
    const file = path.join(dir, 'shards', HOOK, `${String(shard).padStart(6, '0')}.safetensors`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeSafetensors(file, [
      {
        name: 'activations',
        dtype: 'F32',
        shape: [offsets[count], D_IN],
        data: shardWindows.map((w) => w.x),
      },
      {
        name: 'token_ids',
        dtype: 'I32',
        shape: [offsets[count]],
        data: Int32Array.from(shardWindows.flatMap((w) => w.ids)),
      },
      {
        name: 'window_index',
        dtype: 'I32',
        shape: [count],
        data: Int32Array.from(shardWindows, (w) => w.index),
      },
      { name: 'window_offsets', dtype: 'I32', shape: [count + 1], data: offsets },
    ]);
  }
}

const column = (w: RefWindow, f: number) =>
  Array.from({ length: w.ids.length }, (_, t) => w.acts[t * D_SAE + f]);
const maxOf = (w: RefWindow, f: number) => Math.max(...column(w, f));

function expectValues(actual: number[], expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  for (const [i, v] of expected.entries()) expect(Math.abs(actual[i] - v)).toBeLessThan(TOL);
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-features-'));
  sae = randomSae('jumprelu', D_IN, D_SAE, 11);
  sae.config.hookName = HOOK;
  sae.config.modelName = 'tiny';
  await writeSaeLens(path.join(scratch, 'saelens'), sae);
  await importSae(db.sql, path.join(scratch, 'data'), path.join(scratch, 'saelens'), { id: 'sae-a' });
  await importSae(db.sql, path.join(scratch, 'data'), path.join(scratch, 'saelens'), { id: 'sae-b' });
  await writeJob(path.join(scratch, 'job'));
  await computeFeatureRecords(db.sql, path.join(scratch, 'data'), 'sae-a', path.join(scratch, 'job'), {
    device: 'cpu',
    intraOpThreads: 1,
    settings: SETTINGS,
  });
}, 60_000);

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('feature statistics', () => {
  it('match the brute-force reference over every token', async () => {
    const tokens = windows.reduce((n, w) => n + w.ids.length, 0);
    let live = 0;
    for (let f = 0; f < D_SAE; f++) {
      const values = windows.flatMap((w) => column(w, f));
      const stats = await featureStats(db.sql, 'sae-a', f);
      expect(stats.tokens).toBe(tokens);
      // frequency is an exact count over all tokens, not the sample
      expect(stats.frequency).toBe(values.filter((v) => v > 0).length / tokens);
      expect(Math.abs(stats.maxActivation - Math.max(...values))).toBeLessThan(TOL);
      expect(Math.abs(stats.meanActivation - values.reduce((a, b) => a + b, 0) / tokens)).toBeLessThan(TOL);
      if (stats.frequency > 0) live++;
      expect(stats.positiveLogits).toEqual([]);
    }
    // the fixture must exercise both gates: features that fire and tokens where they do not
    expect(live).toBeGreaterThan(D_SAE / 2);
  });

  it('bins the non-zero values of the random sample between 0 and the max', async () => {
    const sample = sampleWindows();
    for (let f = 0; f < D_SAE; f++) {
      const stats = await featureStats(db.sql, 'sae-a', f);
      const expected = new Array(8).fill(0);
      for (const w of sample)
        for (const v of column(w, f))
          if (v > 0) expected[Math.min(7, Math.floor((v / stats.maxActivation) * 8))] += 1;
      expect(stats.histogram).toEqual(expected);
    }
  });
});

/** The sample the accumulator keeps: the windows of lowest hash priority (seeded by window index). */
function sampleWindows(): RefWindow[] {
  const priority = (w: RefWindow) => splitmix32(hashString(String(w.index), SETTINGS.seed! >>> 0))();
  return [...windows].sort((a, b) => priority(a) - priority(b)).slice(0, SETTINGS.sampleSize);
}

describe('feature records', () => {
  it('hold the top windows by max activation, with their token ids and values', async () => {
    for (let f = 0; f < D_SAE; f++) {
      const records = await featureRecords(db.sql, path.join(scratch, 'data'), 'sae-a', f);
      const expected = [...windows].sort((a, b) => maxOf(b, f) - maxOf(a, f)).slice(0, SETTINGS.topK);
      expect(records.top.map((w) => w.window)).toEqual(expected.map((w) => w.index));
      for (const [i, w] of records.top.entries()) {
        expect(w.ids).toEqual(expected[i].ids);
        expectValues(w.values, column(expected[i], f));
      }
    }
  });

  it('hold the same random windows for every feature, from the hash sample', async () => {
    const expected = sampleWindows().slice(0, SETTINGS.randomCount);
    for (let f = 0; f < D_SAE; f++) {
      const records = await featureRecords(db.sql, path.join(scratch, 'data'), 'sae-a', f);
      expect(records.random.map((w) => w.window)).toEqual(expected.map((w) => w.index));
      for (const [i, w] of records.random.entries()) {
        expect(w.ids).toEqual(expected[i].ids);
        expectValues(w.values, column(expected[i], f));
      }
    }
  });

  it('bin sample windows by the quantiles of their max activation', async () => {
    const sample = sampleWindows();
    for (let f = 0; f < D_SAE; f++) {
      const records = await featureRecords(db.sql, path.join(scratch, 'data'), 'sae-a', f);
      const ranked = sample
        .map((w, i) => ({ w, i }))
        .sort((a, b) => maxOf(a.w, f) - maxOf(b.w, f) || a.i - b.i)
        .map((r) => r.w);
      expect(records.quantiles.map((q) => [q.from, q.to])).toEqual([
        [0, 0.5],
        [0.5, 0.9],
        [0.9, 1],
      ]);
      for (const q of records.quantiles) {
        const members = ranked.slice(Math.floor(q.from * sample.length), Math.ceil(q.to * sample.length));
        expect(q.windows.length).toBe(Math.min(SETTINGS.perQuantile!, members.length));
        for (const w of q.windows) {
          const ref = members.find((m) => m.index === w.window);
          expect(ref, `feature ${f}: window ${w.window} is not in bin ${q.from}-${q.to}`).toBeDefined();
          expect(w.ids).toEqual(ref!.ids);
          expectValues(w.values, column(ref!, f));
        }
      }
    }
  });
});

describe('errors', () => {
  it('name what exists', async () => {
    const data = path.join(scratch, 'data');
    await expect(featureStats(db.sql, 'nope', 0)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/unknown SAE "nope"; the library has sae-a, sae-b/),
    });
    await expect(featureRecords(db.sql, data, 'sae-a', D_SAE)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/feature 12 is out of range: SAE "sae-a" has features 0-11/),
    });
    await expect(featureStats(db.sql, 'sae-b', 0)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(
        /SAE "sae-b" has no feature records yet; compute them with `loupe sae features sae-b/,
      ),
    });
    const opts = { device: 'cpu' as const, intraOpThreads: 1 };
    await expect(
      computeFeatureRecords(db.sql, data, 'sae-b', path.join(scratch, 'job'), opts).then(() => 'ran'),
    ).resolves.toBe('ran');
    await expect(
      computeFeatureRecords(db.sql, data, 'sae-b', path.join(scratch, 'nowhere'), opts),
    ).rejects.toThrow(/no activation shards for hook blocks.0.hook_resid_post/);
  });

  it('records go with their SAE', async () => {
    await db.sql`DELETE FROM saes WHERE id = 'sae-b'`;
    for (const table of ['feature_records', 'feature_stats', 'feature_record_windows'])
      expect(
        (await db.sql`SELECT count(*)::int AS n FROM ${db.sql(table)} WHERE sae_id = 'sae-b'`)[0].n,
      ).toBe(0);
    expect((await db.sql`SELECT count(*)::int AS n FROM feature_stats WHERE sae_id = 'sae-a'`)[0].n).toBe(
      D_SAE,
    );
  });
});
