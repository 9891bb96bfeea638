import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { Rng, writeSafetensors } from '@loupe/common';
import { type Database, openDatabase } from '@loupe/common/db';
import { Gpt2Tokenizer } from '@loupe/model';
import {
  computeFeatureRecords,
  encode,
  featureStats,
  importSae,
  reconstruct,
  SAE_MIGRATIONS_DIR,
  SAE_SCHEMA,
  type Sae,
  type SaeArchitecture,
  writeSaeLens,
} from '@loupe/sae';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type CaptureApi, captureClient, floats, type SaeApi, saeClient } from '../support/grpc.js';
import { convertedFixture } from '../support/model.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// The compiled SAE service and capture service as real processes: the SAE service asks the capture
// service for activations over gRPC, encodes with ONNX Runtime and searches the feature store.
const D = 64; // the tiny fixture's d_model
const D_SAE = 96;
const TOPK = 'tiny-topk';
const IDENTITY = 'tiny-identity';
const POST = 'tiny-post';
const HOOK = 'blocks.1.hook_resid_pre';
const TEXT = 'The quick brown fox jumps over the lazy dog, and the dog sleeps on.';

let scratch: string;
let dataDir: string;
let pg: TestDatabase;
let db: Database;
let capture: RunningProcess;
let service: RunningProcess;
let captureApi: CaptureApi;
let sae: SaeApi;
const saes = new Map<string, Sae>();
const HELD_OUT_TEXTS = [
  TEXT,
  'Fellow citizens of the Senate and House of Representatives, I come before you.',
];
const JOB = '0b6f1d8e-2c44-4c1e-9a55-3f1f5b7e9a10';
let heldOut: { x: Float32Array; n: number; ids: number[][] };

function makeSae(architecture: SaeArchitecture, hook: string, seed: number): Sae {
  const rng = new Rng(seed);
  return {
    config: {
      architecture,
      dIn: D,
      dSae: D_SAE,
      ...(architecture === 'topk' ? { k: 8 } : {}),
      hookName: hook,
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: {
      W_enc: rng.normalFloat32(D * D_SAE, 0, 0.3),
      b_enc: rng.normalFloat32(D_SAE, 0, 0.1),
      W_dec: rng.normalFloat32(D_SAE * D, 0, 0.2),
      b_dec: rng.normalFloat32(D, 0, 0.05),
    },
  };
}

/** W_enc = [I, −I], W_dec = [I; −I]: relu(x) − relu(−x) = x, a perfect reconstruction. */
function identitySae(hook: string): Sae {
  const W_enc = new Float32Array(D * 2 * D);
  const W_dec = new Float32Array(2 * D * D);
  for (let i = 0; i < D; i++) {
    W_enc[i * 2 * D + i] = 1;
    W_enc[i * 2 * D + D + i] = -1;
    W_dec[i * D + i] = 1;
    W_dec[(D + i) * D + i] = -1;
  }
  return {
    config: {
      architecture: 'standard',
      dIn: D,
      dSae: 2 * D,
      hookName: hook,
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: { W_enc, b_enc: new Float32Array(2 * D), W_dec, b_dec: new Float32Array(D) },
  };
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-grpc-'));
  dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  // one database for the test and both services
  pg = await startTestDatabase();
  db = await openDatabase(
    { databaseUrl: pg.url, dataDir, embeddedPgPort: 0 },
    { schema: SAE_SCHEMA, migrationsDir: SAE_MIGRATIONS_DIR, applicationName: 'sae-grpc-test' },
  );
  saes.set(TOPK, makeSae('topk', HOOK, 11));
  saes.set(IDENTITY, identitySae('blocks.0.hook_resid_pre'));
  saes.set(POST, makeSae('standard', 'blocks.0.hook_resid_post', 12));
  for (const [id, value] of saes) {
    const folder = path.join(scratch, 'saelens', id);
    await writeSaeLens(folder, value);
    await importSae(db.sql, dataDir, folder, { id });
  }
  const captureAddress = `127.0.0.1:${await freePort()}`;
  const saeAddress = `127.0.0.1:${await freePort()}`;
  const env = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: captureAddress,
    LOUPE_SAE_ADDR: saeAddress,
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...databaseEnv(pg),
  };
  capture = startProcess('services/capture/dist/main.js', env);
  service = startProcess('services/sae/dist/main.js', env);
  [captureApi, sae] = await Promise.all([captureClient(captureAddress), saeClient(saeAddress)]);
  heldOut = await writeHeldOut();
}, 120_000);

/**
 * Held-out activations of two texts at HOOK, from the capture service: as a plain file, and as a
 * capture job folder (activations with their token ids and windows, as capture jobs write shards).
 */
async function writeHeldOut(): Promise<{ x: Float32Array; n: number; ids: number[][] }> {
  const runs = [];
  for (const text of HELD_OUT_TEXTS) runs.push(await activationsOf(text, HOOK));
  const x = Float32Array.from(runs.flatMap((r) => Array.from(r.x)));
  const n = x.length / D;
  await writeSafetensors(path.join(dataDir, 'held-out.safetensors'), [
    { name: 'vectors', dtype: 'F32', shape: [n, D], data: x },
  ]);
  const offsets = Int32Array.from([0, runs[0].ids.length, n]);
  const shard = path.join(dataDir, 'capture', JOB, 'shards', HOOK, '000000.safetensors');
  await fs.mkdir(path.dirname(shard), { recursive: true });
  await writeSafetensors(
    shard,
    [
      { name: 'activations', dtype: 'F32', shape: [n, D], data: x },
      { name: 'token_ids', dtype: 'I32', shape: [n], data: Int32Array.from(runs.flatMap((r) => r.ids)) },
      { name: 'window_index', dtype: 'I32', shape: [2], data: Int32Array.from([0, 1]) },
      { name: 'window_offsets', dtype: 'I32', shape: [3], data: offsets },
    ],
    { hook: HOOK, model: 'tiny' },
  );
  return { x, n, ids: runs.map((r) => r.ids) };
}

afterAll(async () => {
  sae?.close();
  captureApi?.close();
  await service?.stop();
  await capture?.stop();
  await db?.close();
  await pg?.stop();
});

async function expectGrpcError(call: Promise<unknown>, code: status, message: RegExp): Promise<void> {
  const error = await call.then(
    () => null,
    (e: { code: number; details: string }) => e,
  );
  expect(error, 'the call should have failed').not.toBeNull();
  expect({ code: error!.code, details: error!.details }).toMatchObject({ code });
  expect(error!.details).toMatch(message);
}

/** Activations of `text` at `hook` as the capture service gives them. */
async function activationsOf(text: string, hook: string): Promise<{ ids: number[]; x: Float32Array }> {
  const out = await captureApi.Activations({ text, hooks: [hook] });
  return { ids: out.ids, x: floats(out.activations[hook]) };
}

describe('SaeService over gRPC', () => {
  it('lists and describes the library', async () => {
    const { saes: listed } = await sae.ListSaes({});
    expect(listed.map((s) => s.id).sort()).toEqual([IDENTITY, POST, TOPK].sort());
    const { saes: onHook } = await sae.ListSaes({ model: 'tiny', hook: HOOK });
    expect(onHook.map((s) => s.id)).toEqual([TOPK]);
    const info = await sae.GetSae({ id: TOPK });
    expect(info).toMatchObject({
      id: TOPK,
      model: 'tiny',
      hook: HOOK,
      architecture: 'topk',
      dIn: D,
      dSae: D_SAE,
      k: 8,
      hasFeatureRecords: false,
    });
    expect(JSON.parse(info.cfgJson).d_sae).toBe(D_SAE);
    expect(Number.isNaN(Date.parse(info.createdAt))).toBe(false);
  });

  it('encodes text like the float64 reference encode of the capture service activations', async () => {
    const reference = saes.get(TOPK)!;
    const { ids, x } = await activationsOf(TEXT, HOOK);
    const acts = encode(reference, x, ids.length);
    const perToken = 5;
    const response = await sae.Encode({ saeId: TOPK, text: TEXT, perToken, top: 7 });
    expect(response.tokens.map((t) => t.id)).toEqual(ids);
    // ONNX Runtime accumulates in float32, the reference in float64: values agree to 1e-4 relative
    const close = (got: number, want: number) =>
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(want)));
    const maxOf = new Map<number, { value: number; at: number; tokens: number }>();
    for (const [t, token] of response.tokens.entries()) {
      const row = acts.subarray(t * D_SAE, (t + 1) * D_SAE);
      const active = [...row.keys()].filter((i) => row[i] !== 0).sort((a, b) => row[b] - row[a] || a - b);
      expect(token.l0).toBe(active.length);
      expect(token.l0).toBeLessThanOrEqual(8);
      expect(token.features.map((f) => f.feature)).toEqual(active.slice(0, perToken));
      for (const f of token.features) close(f.value, row[f.feature]);
      for (const i of active) {
        const seen = maxOf.get(i);
        if (!seen) maxOf.set(i, { value: row[i], at: t, tokens: 1 });
        else {
          seen.tokens++;
          if (row[i] > seen.value) Object.assign(seen, { value: row[i], at: t });
        }
      }
    }
    expect(response.tokens[0].token).toBe('The');
    const expectedTop = [...maxOf.entries()]
      .filter(([, m]) => m.value > 0)
      .sort((a, b) => b[1].value - a[1].value || a[0] - b[0])
      .slice(0, 7);
    expect(response.top.map((f) => [f.feature, f.tokens, f.maxPosition])).toEqual(
      expectedTop.map(([feature, m]) => [feature, m.tokens, m.at]),
    );
    for (const [i, f] of response.top.entries()) close(f.maxValue, expectedTop[i][1].value);
  });

  it('decodes sparse features to b_dec + Σ value · W_dec[feature]', async () => {
    const { W_dec, b_dec } = saes.get(TOPK)!.weights;
    const features = [
      { feature: 3, value: 1.5 },
      { feature: 95, value: -0.25 },
      { feature: 40, value: 2 },
    ];
    const { vector } = await sae.Decode({ saeId: TOPK, features });
    const expected = Array.from(b_dec, (b, j) =>
      features.reduce((s, f) => s + f.value * W_dec[f.feature * D + j], b),
    );
    expect(vector).toHaveLength(D);
    for (let j = 0; j < D; j++) expect(Math.abs(vector[j] - expected[j])).toBeLessThan(1e-5);
  });

  it('finds nearest features as an exact brute-force cosine ranking does', async () => {
    const { W_dec } = saes.get(TOPK)!.weights;
    const row = (i: number) => W_dec.subarray(i * D, (i + 1) * D);
    const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let j = 0; j < D; j++) {
        dot += a[j] * b[j];
        na += a[j] * a[j];
        nb += b[j] * b[j];
      }
      return dot / Math.sqrt(na * nb);
    };
    const ranking = (q: ArrayLike<number>, skip?: number) =>
      [...Array(D_SAE).keys()]
        .filter((i) => i !== skip)
        .map((i) => ({ feature: i, cosine: cosine(q, row(i)) }))
        .sort((a, b) => b.cosine - a.cosine);
    const check = (
      got: { feature: number; cosine: number }[],
      want: { feature: number; cosine: number }[],
    ) => {
      expect(got.map((n) => n.feature)).toEqual(want.map((n) => n.feature));
      for (const [i, n] of got.entries()) expect(Math.abs(n.cosine - want[i].cosine)).toBeLessThan(1e-5);
    };
    // to a feature: itself left out
    const byFeature = await sae.NearestFeatures({ saeId: TOPK, feature: 17, k: 6, exact: true });
    check(byFeature.neighbours, ranking(row(17), 17).slice(0, 6));
    // to any vector, exact and through HNSW (ef_search covers all 96 features here)
    const q = new Rng(5).normalFloat32(D, 0, 1);
    const vector = { shape: [D], dtype: 'float32', data: Buffer.from(q.buffer) };
    const exact = await sae.NearestFeatures({ saeId: TOPK, vector, k: 10, exact: true });
    check(exact.neighbours, ranking(q).slice(0, 10));
    const hnsw = await sae.NearestFeatures({ saeId: TOPK, vector, k: 10, efSearch: 200 });
    check(hnsw.neighbours, ranking(q).slice(0, 10));
  });

  it('evaluates held-out activations from a file and from a capture job folder', async () => {
    const { x, n } = heldOut;
    // float64 reference of the same figures
    const reference = saes.get(TOPK)!;
    const acts = encode(reference, x, n);
    const xHat = reconstruct(reference, x, n);
    let se = 0;
    let cos = 0;
    let active = 0;
    const fired = new Set<number>();
    const mean = new Float64Array(D);
    for (let r = 0; r < n; r++) for (let j = 0; j < D; j++) mean[j] += x[r * D + j] / n;
    let variance = 0;
    for (let r = 0; r < n; r++) {
      let dot = 0;
      let nx = 0;
      let nh = 0;
      for (let j = 0; j < D; j++) {
        const [a, b] = [x[r * D + j], xHat[r * D + j]];
        se += (a - b) ** 2;
        variance += (a - mean[j]) ** 2;
        dot += a * b;
        nx += a * a;
        nh += b * b;
      }
      cos += dot / Math.sqrt(nx * nh);
      for (let i = 0; i < D_SAE; i++)
        if (acts[r * D_SAE + i] !== 0) {
          active++;
          fired.add(i);
        }
    }
    for (const request of [
      { saeId: TOPK, activationsFile: 'held-out.safetensors' },
      { saeId: TOPK, captureJobId: JOB },
    ]) {
      const m = await sae.Evaluate(request);
      expect(m.vectors).toBe(n);
      expect(m.activityWindowTokens).toBe(n);
      expect(m.l0).toBeCloseTo(active / n, 6);
      expect(Math.abs(m.mse - se / (n * D))).toBeLessThan(1e-5 * (se / (n * D)));
      expect(Math.abs(m.fvu - se / variance)).toBeLessThan(1e-5);
      expect(Math.abs(m.cosine - cos / n)).toBeLessThan(1e-5);
      expect(m.deadFraction).toBeCloseTo((D_SAE - fired.size) / D_SAE, 9);
      expect(m.ceClean).toBeUndefined();
    }
    const capped = await sae.Evaluate({
      saeId: TOPK,
      activationsFile: 'held-out.safetensors',
      maxVectors: 5,
    });
    expect(capped.vectors).toBe(5);
  });

  it('splices an SAE into the model: a perfect reconstruction keeps all of the loss', async () => {
    const texts = [TEXT, 'Fellow citizens of the Senate and House of Representatives'];
    const m = await sae.Evaluate({ saeId: IDENTITY, texts });
    // identity SAE: x̂ = x up to float32 rounding, so spliced = clean
    expect(Math.abs(m.ceSpliced! - m.ceClean!)).toBeLessThan(1e-4);
    expect(m.klDivergence!).toBeLessThan(1e-5);
    // a random model may lose nothing to zero ablation, and then there is nothing to recover
    if (m.ceZeroAblated! > m.ceClean!) expect(m.ceLossRecovered!).toBeCloseTo(1, 3);
    else expect(m.ceLossRecovered).toBeUndefined();
    // reconstruction figures over the texts' own activations when no held-out set is given
    expect(m.vectors).toBeGreaterThan(10);
    expect(m.fvu).toBeLessThan(1e-6);
    expect(m.l0).toBeGreaterThan(0);
    // the clean CE equals the model's own next-token loss from the capture service's logits, on the
    // texts with <|endoftext|> first as SAELens evaluates, the BOS position's prediction left out
    let total = 0;
    let count = 0;
    const { endOfTextId } = await captureApi.ModelInfo({});
    expect(endOfTextId).toBeDefined();
    for (const text of texts) {
      const { ids } = await captureApi.Tokenize({ text });
      const out = await captureApi.Activations({ ids: { ids: [endOfTextId!, ...ids] }, logits: true });
      const logits = floats(out.logits);
      const V = logits.length / out.ids.length;
      for (let t = 1; t + 1 < out.ids.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        let max = Number.NEGATIVE_INFINITY;
        for (const v of row) max = Math.max(max, v);
        let sum = 0;
        for (const v of row) sum += Math.exp(v - max);
        total -= row[out.ids[t + 1]] - max - Math.log(sum);
        count++;
      }
    }
    expect(m.ceClean!).toBeCloseTo(total / count, 5);
  });

  it('serves feature statistics and records with token strings from the model vocabulary', async () => {
    await expectGrpcError(
      sae.FeatureStats({ saeId: TOPK, feature: 1 }),
      status.NOT_FOUND,
      /no feature records yet/,
    );
    await expectGrpcError(sae.FeatureDensity({ id: TOPK }), status.NOT_FOUND, /no feature records yet/);
    await computeFeatureRecords(db.sql, dataDir, TOPK, path.join(dataDir, 'capture', JOB), {
      device: 'cpu',
      intraOpThreads: 1,
      modelDir: path.join(dataDir, 'models', 'tiny'),
    });
    expect((await sae.GetSae({ id: TOPK })).hasFeatureRecords).toBe(true);
    const tokenizer = await Gpt2Tokenizer.load(path.join(dataDir, 'models', 'tiny'));
    const acts = encode(saes.get(TOPK)!, heldOut.x, heldOut.n);
    // the feature that fires most often, so its records are not empty
    const fired = Array.from({ length: D_SAE }, (_, f) => {
      let c = 0;
      for (let r = 0; r < heldOut.n; r++) if (acts[r * D_SAE + f] > 0) c++;
      return c;
    });
    const feature = fired.indexOf(Math.max(...fired));
    const stats = await sae.FeatureStats({ saeId: TOPK, feature });
    const stored = await featureStats(db.sql, TOPK, feature);
    expect(stats).toMatchObject({ saeId: TOPK, feature, tokens: heldOut.n, histogram: stored.histogram });
    expect(stats.frequency).toBeCloseTo(fired[feature] / heldOut.n, 9);
    expect(stats.positiveLogits.map((t) => t.id)).toEqual(stored.positiveLogits.map((t) => t.id));
    expect(stats.positiveLogits.length).toBeGreaterThan(0);
    for (const t of [...stats.positiveLogits, ...stats.negativeLogits])
      expect(t.token).toBe(tokenizer.tokenStrings([t.id])[0]);
    const records = await sae.FeatureRecords({ saeId: TOPK, feature });
    expect(records.top.length).toBeGreaterThan(0);
    for (const w of records.top) {
      // token ids, and strings as the capture service shows them for the same text
      expect(w.ids).toEqual(heldOut.ids[Number(w.window)].slice(0, w.ids.length));
      const shown = await captureApi.Tokenize({
        text: [TEXT, 'Fellow citizens of the Senate and House of Representatives, I come before you.'][
          Number(w.window)
        ],
      });
      expect(w.tokens).toEqual(shown.tokens.slice(0, w.ids.length));
      expect(w.values).toHaveLength(w.ids.length);
    }
    // the density histogram: every feature's log10 frequency (as ListFeatures gives it) in its
    // quarter-decade bin, the dead apart
    const { features: all } = await sae.ListFeatures({ saeId: TOPK });
    const density = await sae.FeatureDensity({ id: TOPK });
    const dead = all.filter((f) => f.frequency === 0).length;
    expect(density).toMatchObject({ saeId: TOPK, tokens: heldOut.n, features: D_SAE, dead });
    const expected = new Map<number, number>();
    for (const f of all) {
      if (f.frequency === 0) continue;
      const bin = Math.floor(Math.log10(f.frequency) / 0.25);
      expected.set(bin, (expected.get(bin) ?? 0) + 1);
    }
    const firstBin = Math.min(...expected.keys());
    expect(density.bins.map((b) => Math.round(b.log10From / 0.25))).toEqual(
      Array.from({ length: Math.max(...expected.keys()) - firstBin + 1 }, (_, i) => firstBin + i),
    );
    for (const b of density.bins) {
      expect(b.log10To - b.log10From).toBeCloseTo(0.25, 12);
      expect(b.count).toBe(expected.get(Math.round(b.log10From / 0.25)) ?? 0);
    }
    expect(density.bins.reduce((n, b) => n + b.count, 0)).toBe(D_SAE - dead);
    await expectGrpcError(
      sae.FeatureRecords({ saeId: TOPK, feature: D_SAE }),
      status.NOT_FOUND,
      /feature 96 is out of range/,
    );
  });

  it('trains an SAE as a background job into the library, then records its evaluation', async () => {
    const queued = await sae.Train({
      captureJobId: JOB,
      hook: HOOK,
      architecture: 'topk',
      width: 32,
      k: 4,
      steps: 20,
      batchSize: 8,
      seed: 3,
      saeId: 'trained',
    });
    expect(queued).toMatchObject({ status: 'queued', steps: 20 });
    let job = queued;
    for (let i = 0; i < 600 && !['done', 'failed', 'cancelled'].includes(job.status); i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      job = await sae.GetTrainingJob({ id: queued.id });
    }
    expect({ status: job.status, error: job.error }).toEqual({ status: 'done', error: '' });
    expect(job).toMatchObject({ phase: 'done', step: 20, saeId: 'trained' });
    const trained = await sae.GetSae({ id: 'trained' });
    expect(trained).toMatchObject({
      trainedAs: 'topk',
      architecture: 'topk',
      dIn: D,
      dSae: 32,
      k: 4,
      hook: HOOK,
    });
    const evaluated = await sae.Evaluate({ saeId: 'trained', captureJobId: JOB });
    expect(evaluated.vectors).toBe(heldOut.n);
    expect((await sae.GetSae({ id: 'trained' })).metrics).toEqual(evaluated);
  });

  it('says clearly what was wrong with a request', async () => {
    await expectGrpcError(sae.GetSae({ id: 'nope' }), status.NOT_FOUND, /unknown SAE "nope"; known: /);
    await expectGrpcError(sae.Encode({ saeId: 'nope', text: 'hi' }), status.NOT_FOUND, /unknown SAE "nope"/);
    await expectGrpcError(sae.Encode({ saeId: TOPK, text: '' }), status.INVALID_ARGUMENT, /text is empty/);
    await expectGrpcError(
      sae.Decode({ saeId: TOPK, features: [{ feature: D_SAE, value: 1 }] }),
      status.INVALID_ARGUMENT,
      /feature 96 does not exist: SAE "tiny-topk" has features 0-95/,
    );
    await expectGrpcError(
      sae.NearestFeatures({ saeId: TOPK, feature: -1 }),
      status.INVALID_ARGUMENT,
      /feature -1 does not exist/,
    );
    const short = { shape: [D - 1], dtype: 'float32', data: Buffer.alloc((D - 1) * 4, 1) };
    await expectGrpcError(
      sae.NearestFeatures({ saeId: TOPK, vector: short }),
      status.INVALID_ARGUMENT,
      /vector has 63 values .*d_in 64/,
    );
    await expectGrpcError(
      sae.Evaluate({ saeId: POST, texts: [TEXT] }),
      status.INVALID_ARGUMENT,
      /only blocks.\{L\}.hook_resid_pre SAEs can be spliced/,
    );
    await expectGrpcError(
      sae.Evaluate({ saeId: TOPK, activationsFile: '../outside.safetensors' }),
      status.INVALID_ARGUMENT,
      /must name a file inside the data directory/,
    );
    await expectGrpcError(
      sae.Train({ hook: HOOK }),
      status.INVALID_ARGUMENT,
      /give exactly one of capture_job_id or activations_file/,
    );
    await expectGrpcError(
      sae.GetTrainingJob({ id: '0b6f1d8e-2c44-4c1e-9a55-000000000000' }),
      status.NOT_FOUND,
      /unknown training job/,
    );
    await expectGrpcError(
      sae.Evaluate({ saeId: TOPK, captureJobId: '0b6f1d8e-2c44-4c1e-9a55-000000000000' }),
      status.NOT_FOUND,
      /no such file or folder/,
    );
    await expectGrpcError(sae.Evaluate({ saeId: TOPK }), status.INVALID_ARGUMENT, /nothing to evaluate on/);
  });
});
