import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { pool } from '@loupe/capture';
import { Rng } from '@loupe/common';
import { openDatabase } from '@loupe/common/db';
import type { FeatureClamp, ResidualSteering } from '@loupe/common/grpc';
import { importSae, randomSae, SAE_MIGRATIONS_DIR, SAE_SCHEMA, writeSaeLens } from '@loupe/sae';
import { generateCatalog } from '@loupe/shop';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type CaptureApi, captureClient, floats, saeClient } from '../support/grpc.js';
import { convertedFixture, maxAbsDiff } from '../support/model.js';
import { freePort, type RunningProcess, runCli, startProcess } from '../support/process.js';

// The shop demo's search: the compiled capture service as a real process on the tiny fixture model,
// real gRPC, the suite's database (Postgres with pgvector), and the real CLI.
const HOOK = 'blocks.1.hook_resid_post';
const STEER_HOOK = 'blocks.1.hook_resid_pre';
const PRODUCTS = 300;
const D = 64;
const EOT = 50256;

let db: TestDatabase;
let service: RunningProcess;
let saeService: RunningProcess | undefined;
let client: CaptureApi;
let env: Record<string, string>;
/** product id → pooled activations computed through the Activations RPC (the reference) */
const reference = new Map<string, Float32Array>();

/** A ReLU SAE feature's clamp at STEER_HOOK from seeded random weights. */
function randomClamp(seed: number, value: number): FeatureClamp {
  const rng = new Rng(seed);
  return {
    hook: STEER_HOOK,
    encoderColumn: Array.from(rng.normalFloat32(D, 0, 0.3)),
    encoderBias: 0.1,
    bDec: Array.from(rng.normalFloat32(D, 0, 0.05)),
    decoderRow: Array.from(rng.normalFloat32(D, 0, 0.3)),
    threshold: 0,
    value,
  };
}

/**
 * The reference embedding: Activations on <|endoftext|> + the text's ids (with the same steering and
 * clamps), mean over the text, by the pooling function the collection documents.
 */
async function referenceEmbedding(
  text: string,
  steering: ResidualSteering[] = [],
  clamps: FeatureClamp[] = [],
  hook = HOOK,
) {
  const { ids } = await client.Tokenize({ text });
  const response = await client.Activations({
    ids: { ids: [EOT, ...ids] },
    hooks: [hook],
    steering,
    clamps,
  });
  return pool(floats(response.activations[hook]), ids.length + 1, D, 'mean');
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/**
 * Results must be the brute-force cosine ranking of the reference embeddings. The service embeds in
 * padded batches and the reference one text at a time, so scores agree to float32 rounding (1e-4);
 * two products whose reference scores are that close may swap places.
 */
function expectBruteForceRanking(query: ArrayLike<number>, results: { id: string; score: number }[]) {
  const ranked = [...reference]
    .map(([id, e]) => ({ id, score: cosine(query, e) }))
    .sort((a, b) => b.score - a.score);
  expect(results).toHaveLength(10);
  for (const [i, result] of results.entries()) {
    expect(Math.abs(result.score - ranked[i].score)).toBeLessThan(1e-4);
    const own = ranked.find((r) => r.id === result.id)!;
    expect(
      Math.abs(own.score - ranked[i].score),
      `rank ${i + 1}: ${result.id} vs ${ranked[i].id}`,
    ).toBeLessThan(1e-4);
  }
}

async function grpcError(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  const error = await call.then(
    () => null,
    (e: { code: number; details: string }) => e,
  );
  expect(error, 'the call should have failed').not.toBeNull();
  return error!;
}

beforeAll(async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-shop-'));
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  const address = `127.0.0.1:${await freePort()}`;
  db = await startTestDatabase();
  env = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: address,
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...databaseEnv(db),
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
  };
  service = startProcess('services/capture/dist/main.js', env);
  client = await captureClient(address);
  const collection = await client.IndexDocuments({
    collection: 'shop',
    catalog: { products: PRODUCTS, seed: 1 },
  });
  expect(collection).toMatchObject({
    name: 'shop',
    model: 'tiny',
    hook: HOOK,
    pooling: 'mean',
    dim: D,
    count: PRODUCTS,
  });
  const products = generateCatalog({ products: PRODUCTS, seed: 1 });
  // a few calls in flight at once, so the service batches them
  for (let first = 0; first < products.length; first += 16) {
    const batch = products.slice(first, first + 16);
    const embeddings = await Promise.all(batch.map((p) => referenceEmbedding(p.text)));
    for (const [i, p] of batch.entries()) reference.set(p.id, embeddings[i]);
  }
}, 180_000);

afterAll(async () => {
  client?.close();
  await saeService?.stop();
  await service?.stop();
  await db?.stop();
});

describe('SearchDocuments over the indexed catalog', () => {
  it('embeds the query as Activations + mean pooling and ranks like brute-force cosine', async () => {
    const query = 'waterproof hiking boots';
    const response = await client.SearchDocuments({
      collection: 'shop',
      query,
      k: 10,
      includeEmbeddings: true,
    });
    const expected = await referenceEmbedding(query);
    expect(maxAbsDiff(response.steered!.queryEmbedding, expected)).toBeLessThan(1e-4);
    expect(response.queryIds).toEqual((await client.Tokenize({ text: query })).ids);
    expect(response.unsteered).toBeNull();
    expectBruteForceRanking(expected, response.steered!.results);
    for (const result of response.steered!.results) {
      // the stored embedding is the reference pooled activation, and the metadata is the product's
      expect(maxAbsDiff(result.embedding, reference.get(result.id)!)).toBeLessThan(1e-4);
      const product = JSON.parse(result.metadataJson);
      expect(result.text.startsWith(product.title)).toBe(true);
      expect(product).toHaveProperty('attributes');
    }
    expect(response.steered!.results.map((r) => r.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('steers the query exactly as the steered forward pass, with the unsteered results beside it', async () => {
    const steering = [
      { hook: STEER_HOOK, vector: Array.from(new Rng(3).normalFloat32(D, 0, 1)), strength: 4 },
    ];
    const query = 'running shoes';
    const response = await client.SearchDocuments({ collection: 'shop', query, k: 10, steering });
    const steered = await referenceEmbedding(query, steering);
    const plain = await referenceEmbedding(query);
    expect(maxAbsDiff(response.steered!.queryEmbedding, steered)).toBeLessThan(1e-4);
    expect(maxAbsDiff(response.unsteered!.queryEmbedding, plain)).toBeLessThan(1e-4);
    // the steering really moved the embedding (far beyond the tolerance above)
    expect(maxAbsDiff(steered, plain)).toBeGreaterThan(0.1);
    expectBruteForceRanking(steered, response.steered!.results);
    expectBruteForceRanking(plain, response.unsteered!.results);
  });

  it('clamps an SAE feature in the query exactly as Activations does, alone and after steering', async () => {
    const query = 'cushioned running shoes';
    const clamps = [randomClamp(5, 6)];
    const steering = [
      { hook: STEER_HOOK, vector: Array.from(new Rng(4).normalFloat32(D, 0, 1)), strength: 2 },
    ];
    const plain = await referenceEmbedding(query);
    for (const edits of [{ clamps }, { clamps, steering }]) {
      const response = await client.SearchDocuments({ collection: 'shop', query, k: 10, ...edits });
      const clamped = await referenceEmbedding(query, edits.steering, clamps);
      // batched service forward vs one reference forward: float32 rounding only
      expect(maxAbsDiff(response.steered!.queryEmbedding, clamped)).toBeLessThan(1e-5);
      expect(maxAbsDiff(response.unsteered!.queryEmbedding, plain)).toBeLessThan(1e-5);
      // the clamp really moved the embedding (far beyond the tolerance above)
      expect(maxAbsDiff(clamped, plain)).toBeGreaterThan(0.1);
      expectBruteForceRanking(clamped, response.steered!.results);
      expectBruteForceRanking(plain, response.unsteered!.results);
    }
  });

  it('indexes given documents and explains what is wrong with a request', async () => {
    const small = await client.IndexDocuments({
      collection: 'early',
      hook: 'blocks.0.hook_resid_post',
      documents: {
        documents: [
          { id: 'a', text: 'a red kettle', metadataJson: '{"n":1}' },
          { id: 'b', text: 'a blue tent', metadataJson: '{"n":2}' },
        ],
      },
    });
    expect(small).toMatchObject({ name: 'early', count: 2, hook: 'blocks.0.hook_resid_post' });
    expect((await client.GetCollection({ collection: 'shop' })).count).toBe(PRODUCTS);
    expect((await client.ListCollections({})).collections.map((c) => c.name)).toEqual(['early', 'shop']);
    const tooLate = await grpcError(
      client.SearchDocuments({
        collection: 'early',
        query: 'tent',
        steering: [{ hook: STEER_HOOK, vector: new Array(D).fill(1) }],
      }),
    );
    expect(tooLate.code).toBe(status.INVALID_ARGUMENT);
    expect(tooLate.details).toMatch(
      /blocks.1.hook_resid_pre cannot change .* read at blocks.0.hook_resid_post/,
    );
    // a clamp after the hook the collection is read at cannot change its embeddings
    const clampTooLate = await grpcError(
      client.SearchDocuments({ collection: 'early', query: 'tent', clamps: [randomClamp(5, 1)] }),
    );
    expect(clampTooLate.code).toBe(status.INVALID_ARGUMENT);
    expect(clampTooLate.details).toMatch(
      /clamps\[0\] at blocks.1.hook_resid_pre cannot change .* read at blocks.0.hook_resid_post: clamp at a layer at or before 0/,
    );
    // a clamp is checked as Activations checks it
    const narrow = await grpcError(
      client.SearchDocuments({
        collection: 'shop',
        query: 'tent',
        clamps: [{ ...randomClamp(5, 1), decoderRow: [1, 2, 3] }],
      }),
    );
    expect(narrow.code).toBe(status.INVALID_ARGUMENT);
    expect(narrow.details).toMatch(
      /clamps\[0\]: encoder_column and decoder_row need d_model = 64 values, got 64 and 3/,
    );
    const notResidPre = await grpcError(
      client.SearchDocuments({
        collection: 'shop',
        query: 'tent',
        clamps: [{ ...randomClamp(5, 1), hook: HOOK }],
      }),
    );
    expect(notResidPre.details).toMatch(
      /clamps\[0\]: "blocks.1.hook_resid_post" cannot be clamped; use blocks.\{L\}.hook_resid_pre/,
    );
    const infinite = await grpcError(
      client.SearchDocuments({ collection: 'shop', query: 'tent', clamps: [randomClamp(5, Infinity)] }),
    );
    expect(infinite.details).toMatch(/feature clamp for layer 1 contains a NaN or infinite value/);
    const missing = await grpcError(client.SearchDocuments({ collection: 'nope', query: 'tent' }));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(missing.details).toMatch(/no collection "nope"; collections: early, shop/);
    const duplicate = await grpcError(
      client.IndexDocuments({
        collection: 'early',
        documents: {
          documents: [
            { id: 'a', text: 'x' },
            { id: 'a', text: 'y' },
          ],
        },
      }),
    );
    expect(duplicate.details).toMatch(/id "a" appears twice/);
    const pooling = await grpcError(
      client.IndexDocuments({
        collection: 'other',
        pooling: 'max',
        documents: { documents: [{ id: 'a', text: 'x' }] },
      }),
    );
    expect(pooling.details).toMatch(/unknown pooling "max": expected one of mean, last/);
  });
});

describe('loupe demo shop', () => {
  it('index writes the catalog as a capture dataset and indexes it', async () => {
    const { code, stdout, stderr } = await runCli(
      ['demo', 'shop', 'index', '--products', '120', '--collection', 'small'],
      env,
    );
    expect(code, stderr).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.collection).toMatchObject({ name: 'small', count: 120, dim: D });
    const lines = (await fs.readFile(out.dataset, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(120);
    expect(JSON.parse(lines[0]).text).toBe(generateCatalog({ products: 1 })[0].text);
  }, 60_000);

  it('eval prints plain and steered metrics in their ranges (mean-difference and SAE directions)', async () => {
    // a random SAE at the steering hook, in the library the CLI reads
    const sae = randomSae('topk', D, 96, 7, { k: 8 });
    sae.config.hookName = STEER_HOOK;
    sae.config.modelName = 'tiny';
    const folder = path.join(env.LOUPE_DATA_DIR, 'random-sae');
    await writeSaeLens(folder, sae);
    const store = await openDatabase(
      { databaseUrl: db.url, dataDir: env.LOUPE_DATA_DIR, embeddedPgPort: 0 },
      { schema: SAE_SCHEMA, migrationsDir: SAE_MIGRATIONS_DIR, applicationName: 'shop-test' },
    );
    await importSae(store.sql, env.LOUPE_DATA_DIR, folder, { id: 'shop-sae' });
    await store.close();

    for (const extra of [[], ['--sae', 'shop-sae']]) {
      const args = ['demo', 'shop', 'eval', '--products', String(PRODUCTS), '--json', ...extra];
      const { code, stdout, stderr } = await runCli(args, env);
      expect(code, stderr).toBe(0);
      const report = JSON.parse(stdout);
      expect(report).toMatchObject({ model: 'tiny', products: PRODUCTS, hook: STEER_HOOK, pooling: 'mean' });
      expect(report.queries).toBeGreaterThan(10);
      const { plain, steering } = report;
      for (const metrics of [plain, steering.unsteered, steering.steered]) {
        expect(metrics.precisionAt10).toBeGreaterThanOrEqual(0);
        expect(metrics.precisionAt10).toBeLessThanOrEqual(1);
        expect(metrics.ndcgAt10).toBeGreaterThanOrEqual(0);
        expect(metrics.ndcgAt10).toBeLessThanOrEqual(1);
      }
      expect(steering.movedIntoTop10Rate).toBeGreaterThanOrEqual(0);
      expect(steering.movedIntoTop10Rate).toBeLessThanOrEqual(1);
      expect(steering.source).toBe(extra.length ? 'sae' : 'mean-difference');
      if (extra.length === 0) {
        // adding the with-minus-without mean embedding at the very hook the collection is read at
        // moves the query towards products with the attribute, whatever the model's weights
        expect(steering.steered.attributeShare).toBeGreaterThan(steering.unsteered.attributeShare + 0.2);
        expect(steering.movedIntoTop10Rate).toBeGreaterThan(0);
      } else {
        for (const label of Object.values(steering.attributes) as { feature: number }[]) {
          expect(label.feature).toBeGreaterThanOrEqual(0);
          expect(label.feature).toBeLessThan(96);
        }
      }
    }
  }, 240_000);

  it("index defaults to the demo workspace's SAE's hook, so searches come with its features", async () => {
    // the workspace `loupe serve` would have written, naming the SAE imported above (eval's test)
    await fs.writeFile(
      path.join(env.LOUPE_DATA_DIR, 'workspace.json'),
      JSON.stringify({
        version: 1,
        model: 'tiny',
        offline: true,
        status: 'done',
        steps: [],
        saeId: 'shop-sae',
      }),
    );
    saeService = startProcess('services/sae/dist/main.js', env);
    (await saeClient(env.LOUPE_SAE_ADDR)).close();
    const { code, stdout, stderr } = await runCli(
      ['demo', 'shop', 'index', '--products', '40', '--collection', 'at-demo-sae'],
      env,
    );
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout).collection).toMatchObject({ name: 'at-demo-sae', hook: STEER_HOOK, count: 40 });
    // --hook still wins
    const chosen = await runCli(
      ['demo', 'shop', 'index', '--products', '40', '--collection', 'at-hook', '--hook', HOOK],
      env,
    );
    expect(chosen.code, chosen.stderr).toBe(0);
    expect(JSON.parse(chosen.stdout).collection.hook).toBe(HOOK);
  }, 120_000);
});
