import fs from 'node:fs/promises';
import path from 'node:path';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA, collectionEmbeddings } from '@loupe/capture';
import {
  type LoupeConfig,
  loadConfig,
  readWorkspace,
  requirePositionHook,
  UserInputError,
  workspaceFile,
} from '@loupe/common';
import { openDatabase } from '@loupe/common/db';
import { type CaptureApi, captureServiceClient, saeServiceClient } from '@loupe/common/grpc';
import { findSae, readSaeLens, SAE_MIGRATIONS_DIR, SAE_SCHEMA, SaeEncoder } from '@loupe/sae';
import {
  catalogJsonl,
  catalogOptions,
  type EvalQuery,
  evalQueries,
  generateCatalog,
  isRelevant,
  mean,
  ndcgAtK,
  type Product,
  precisionAtK,
} from '@loupe/shop';
import { printJson } from '../run-command.js';

const K = 10;
const ENCODE_ROWS = 256;
const CONCURRENCY = 8;

interface CatalogFlags {
  products?: string;
  seed?: string;
  collection?: string;
  hook?: string;
  pooling?: string;
  model?: string;
}

interface EvalFlags extends CatalogFlags {
  sae?: string;
  strengthScale?: string;
  json?: boolean;
}

/**
 * `loupe demo shop index`: generates the catalog, writes it as a capture dataset
 * ($LOUPE_DATA_DIR/datasets/catalog-<n>-s<seed>.jsonl) and indexes it into a collection through the
 * capture service (which regenerates the same products from the size and seed). Without --hook, at the
 * demo workspace's SAE's hook when there is one for the model, so searches come with its features.
 */
export async function index(flags: CatalogFlags): Promise<void> {
  const config = loadConfig();
  const { products, seed } = parseCatalogFlags(flags);
  const dataset = await writeDataset(config, generateCatalog({ products, seed }), products, seed);
  const client = await connect(config);
  try {
    const hook = flags.hook ?? (await demoSaeHook(config, client, flags.model ?? '')) ?? '';
    const collection = await client.IndexDocuments({
      collection: flags.collection ?? 'shop',
      model: flags.model ?? '',
      hook,
      pooling: flags.pooling ?? '',
      catalog: { products, seed },
      replace: true,
    });
    await printJson({ collection, dataset });
  } finally {
    client.close();
  }
}

/**
 * `loupe demo shop eval`: indexes the catalog, then measures plain search on the labelled queries
 * ("waterproof hiking boots": relevant = hiking boots that are waterproof) and steered search (the
 * query without the attribute, "hiking boots", steered towards the attribute).
 *
 * The steering direction for an attribute is, with --sae, the decoder row of the SAE feature that
 * best separates products with the attribute from products without it (largest difference of mean
 * activation over the pooled standard deviation, on the SAE's encoding of the product embeddings);
 * without an SAE, the difference of the two groups' mean embeddings. Both are chosen on the same
 * catalog the queries are scored on, the way someone picking a feature to boost would look at it.
 */
export async function evaluate(flags: EvalFlags): Promise<void> {
  const config = loadConfig();
  const { products: size, seed } = parseCatalogFlags(flags);
  const strengthScale = Number(flags.strengthScale ?? '1');
  if (!Number.isFinite(strengthScale) || strengthScale < 0)
    throw new UserInputError(`--strength-scale must be a number ≥ 0, got ${flags.strengthScale}`);
  const collectionName = flags.collection ?? 'shop-eval';
  const client = await connect(config);
  try {
    const info = await client.ModelInfo({ model: flags.model ?? '' });
    const sae = flags.sae ? await loadSae(config, flags.sae) : undefined;
    if (sae && sae.model !== info.name)
      throw new UserInputError(
        `SAE ${sae.id} was trained on ${sae.model}; the capture service serves ${info.name}`,
      );
    const hook = flags.hook ?? sae?.hook ?? `blocks.${info.nLayer - 1}.hook_resid_pre`;
    const steerLayer = steeringLayer(hook, sae?.hook, info.nLayer);
    const collection = await client.IndexDocuments({
      collection: collectionName,
      model: flags.model ?? '',
      hook,
      pooling: flags.pooling ?? '',
      catalog: { products: size, seed },
      replace: true,
    });
    const products = generateCatalog({ products: size, seed });
    const queries = evalQueries(products);
    if (queries.length === 0)
      throw new UserInputError(`a catalog of ${size} products is too small for any labelled query; use more`);
    const byId = new Map(products.map((p) => [p.id, p]));
    const embeddings = await readEmbeddings(config, collectionName, products);
    const attributes = [...new Set(queries.flatMap((q) => q.attributes))];
    const directions = sae
      ? await saeDirections(config, sae, embeddings, products, attributes)
      : meanDifferenceDirections(embeddings, products, attributes);
    const meanNorm = mean(embeddings.map(norm));

    const plain = await mapLimit(queries, async (q) => {
      const response = await client.SearchDocuments({ collection: collectionName, query: q.text, k: K });
      return rankingMetrics(response.steered?.results ?? [], byId, q, products);
    });
    const steered = await mapLimit(queries, async (q) => {
      const direction = directions.get(q.attributes[0]);
      if (!direction) throw new Error(`no direction for ${q.attributes[0]}`);
      // the added vector's norm is strengthScale × the mean norm of a product embedding
      const strength = (strengthScale * meanNorm) / Math.max(norm(direction.vector), 1e-12);
      const response = await client.SearchDocuments({
        collection: collectionName,
        query: q.baseText,
        k: K,
        steering: [{ hook: `blocks.${steerLayer}.hook_resid_pre`, vector: direction.vector, strength }],
      });
      const before = response.unsteered?.results ?? [];
      const after = response.steered?.results ?? [];
      const beforeIds = new Set(before.map((r) => r.id));
      const withAttribute = (id: string) => byId.get(id)?.attributes.includes(q.attributes[0]) ?? false;
      const movedIn = after.filter((r) => withAttribute(r.id) && !beforeIds.has(r.id)).length;
      return {
        unsteered: rankingMetrics(before, byId, q, products),
        steered: rankingMetrics(after, byId, q, products),
        attributeShareUnsteered: before.filter((r) => withAttribute(r.id)).length / K,
        attributeShareSteered: after.filter((r) => withAttribute(r.id)).length / K,
        movedIn: movedIn / K,
      };
    });

    const summary = (rows: { precision: number; ndcg: number }[]) => ({
      precisionAt10: mean(rows.map((r) => r.precision)),
      ndcgAt10: mean(rows.map((r) => r.ndcg)),
    });
    await printJson({
      model: info.name,
      collection: collection.name,
      hook: collection.hook,
      pooling: collection.pooling,
      products: size,
      seed,
      queries: queries.length,
      plain: summary(plain),
      steering: {
        source: sae ? 'sae' : 'mean-difference',
        ...(sae ? { sae: sae.id } : {}),
        hook: `blocks.${steerLayer}.hook_resid_pre`,
        strengthScale,
        unsteered: {
          ...summary(steered.map((s) => s.unsteered)),
          attributeShare: mean(steered.map((s) => s.attributeShareUnsteered)),
        },
        steered: {
          ...summary(steered.map((s) => s.steered)),
          attributeShare: mean(steered.map((s) => s.attributeShareSteered)),
        },
        // products with the attribute that steering brought into the top 10, per top-10 place
        movedIntoTop10Rate: mean(steered.map((s) => s.movedIn)),
        queriesImproved: mean(steered.map((s) => (s.steered.precision > s.unsteered.precision ? 1 : 0))),
        attributes: Object.fromEntries([...directions].map(([a, d]) => [a, d.label])),
      },
    });
  } finally {
    client.close();
  }
}

function parseCatalogFlags(flags: CatalogFlags): { products: number; seed: number } {
  const products = Number(flags.products ?? '3000');
  const seed = Number(flags.seed ?? '1');
  if (!Number.isSafeInteger(products))
    throw new UserInputError(`--products must be a whole number, got ${flags.products}`);
  if (!Number.isSafeInteger(seed))
    throw new UserInputError(`--seed must be a whole number, got ${flags.seed}`);
  return catalogOptions({ products, seed });
}

async function connect(config: LoupeConfig): Promise<CaptureApi> {
  const client = captureServiceClient(config.captureAddress);
  await client.ready(30_000).catch(() => {
    client.close();
    throw new UserInputError(
      `the capture service at ${config.captureAddress} is not reachable; start it (loupe serve) or set LOUPE_CAPTURE_ADDR`,
      'UNAVAILABLE',
    );
  });
  return client;
}

/**
 * The hook the demo workspace's SAE reads, when the workspace has an SAE of this model and the SAE
 * service knows it; else null (the capture service's default hook).
 */
async function demoSaeHook(config: LoupeConfig, capture: CaptureApi, model: string): Promise<string | null> {
  const workspace = await readWorkspace(workspaceFile(config.dataDir));
  if (!workspace?.saeId) return null;
  const info = await capture.ModelInfo({ model });
  if (workspace.model !== info.name) return null;
  const sae = saeServiceClient(config.saeAddress);
  try {
    await sae.ready(10_000);
    return (await sae.GetSae({ id: workspace.saeId })).hook;
  } catch {
    return null; // the SAE service is down or the SAE was deleted
  } finally {
    sae.close();
  }
}

async function writeDataset(config: LoupeConfig, products: Product[], size: number, seed: number) {
  const dir = path.join(config.dataDir, 'datasets');
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `catalog-${size}-s${seed}.jsonl`);
  await fs.writeFile(file, catalogJsonl(products));
  return file;
}

/**
 * Steering acts at blocks.L.hook_resid_pre. With an SAE, L is the SAE's layer (its hook must be a
 * resid_pre); without, the collection hook's layer (its width must be d_model).
 */
function steeringLayer(hook: string, saeHook: string | undefined, nLayer: number): number {
  const ref = requirePositionHook(saeHook ?? hook, nLayer, 'shop embeddings');
  if (ref.kind !== 'block' || (saeHook !== undefined && ref.hook !== 'hook_resid_pre'))
    throw new UserInputError(
      `steering needs ${saeHook ? 'an SAE' : 'a collection hook'} on blocks.{L}.hook_resid_pre; got ${saeHook ?? hook}`,
    );
  if (ref.hook.startsWith('mlp.'))
    throw new UserInputError(`without --sae the collection hook must be d_model wide (not ${hook})`);
  return ref.layer;
}

function rankingMetrics(
  results: { id: string }[],
  byId: Map<string, Product>,
  query: EvalQuery,
  products: Product[],
): { precision: number; ndcg: number } {
  const ranked = results.map((r) => {
    const p = byId.get(r.id);
    return p !== undefined && isRelevant(p, query);
  });
  const totalRelevant = products.filter((p) => isRelevant(p, query)).length;
  return { precision: precisionAtK(ranked, K), ndcg: ndcgAtK(ranked, totalRelevant, K) };
}

async function readEmbeddings(config: LoupeConfig, collection: string, products: Product[]) {
  const db = await openDatabase(config, {
    schema: CAPTURE_SCHEMA,
    migrationsDir: CAPTURE_MIGRATIONS_DIR,
    applicationName: 'loupe-cli',
  });
  try {
    const stored = await collectionEmbeddings(db.sql, collection);
    return products.map((p) => {
      const e = stored.get(p.id);
      if (!e) throw new Error(`product ${p.id} is missing from collection ${collection}`);
      return Float32Array.from(e);
    });
  } finally {
    await db.close();
  }
}

interface Direction {
  vector: number[];
  label: Record<string, number | string>;
}

function meanDifferenceDirections(embeddings: Float32Array[], products: Product[], attributes: string[]) {
  const out = new Map<string, Direction>();
  const d = embeddings[0].length;
  for (const attribute of attributes) {
    const sums = [new Float64Array(d), new Float64Array(d)];
    const counts = [0, 0];
    products.forEach((p, i) => {
      const side = p.attributes.includes(attribute) ? 0 : 1;
      counts[side]++;
      for (let j = 0; j < d; j++) sums[side][j] += embeddings[i][j];
    });
    const vector = Array.from({ length: d }, (_, j) => sums[0][j] / counts[0] - sums[1][j] / counts[1]);
    out.set(attribute, { vector, label: { with: counts[0], without: counts[1] } });
  }
  return out;
}

async function loadSae(config: LoupeConfig, id: string) {
  const db = await openDatabase(config, {
    schema: SAE_SCHEMA,
    migrationsDir: SAE_MIGRATIONS_DIR,
    applicationName: 'loupe-cli',
  });
  try {
    const row = await findSae(db.sql, id);
    return { ...row, sae: await readSaeLens(row.weightsPath) };
  } finally {
    await db.close();
  }
}

/**
 * For each attribute, the SAE feature whose activation on product embeddings best separates products
 * with the attribute from those without: (mean_with − mean_without) / √((var_with + var_without) / 2).
 * Encodes in chunks and keeps running sums, so memory stays at a few rows × d_sae.
 */
async function saeDirections(
  config: LoupeConfig,
  loaded: Awaited<ReturnType<typeof loadSae>>,
  embeddings: Float32Array[],
  products: Product[],
  attributes: string[],
): Promise<Map<string, Direction>> {
  const { dIn, dSae } = loaded.sae.config;
  if (embeddings[0].length !== dIn)
    throw new UserInputError(
      `SAE ${loaded.id} reads ${dIn} values; the product embeddings have ${embeddings[0].length}`,
    );
  const encoder = await SaeEncoder.open(loaded.sae, {
    device: config.device,
    intraOpThreads: config.intraOpThreads,
  });
  const total = { sum: new Float64Array(dSae), sq: new Float64Array(dSae) };
  const withAttr = new Map(
    attributes.map((a) => [a, { n: 0, sum: new Float64Array(dSae), sq: new Float64Array(dSae) }]),
  );
  try {
    for (let first = 0; first < embeddings.length; first += ENCODE_ROWS) {
      const rows = embeddings.slice(first, first + ENCODE_ROWS);
      const x = new Float32Array(rows.length * dIn);
      for (const [r, row] of rows.entries()) x.set(row, r * dIn);
      const acts = await encoder.encode(x, rows.length);
      for (let r = 0; r < rows.length; r++) {
        const a = acts.subarray(r * dSae, (r + 1) * dSae);
        const targets = [
          total,
          ...products[first + r].attributes.flatMap((name) => withAttr.get(name) ?? []),
        ];
        for (const t of targets) {
          for (let i = 0; i < dSae; i++) {
            if (a[i] === 0) continue;
            t.sum[i] += a[i];
            t.sq[i] += a[i] * a[i];
          }
        }
        for (const name of products[first + r].attributes) {
          const stats = withAttr.get(name);
          if (stats) stats.n++;
        }
      }
    }
  } finally {
    await encoder.close();
  }
  const n = embeddings.length;
  const out = new Map<string, Direction>();
  for (const [attribute, w] of withAttr) {
    const m = n - w.n;
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < dSae; i++) {
      const meanWith = w.sum[i] / w.n;
      const meanWithout = (total.sum[i] - w.sum[i]) / m;
      const varWith = w.sq[i] / w.n - meanWith ** 2;
      const varWithout = (total.sq[i] - w.sq[i]) / m - meanWithout ** 2;
      const score = (meanWith - meanWithout) / Math.sqrt(Math.max((varWith + varWithout) / 2, 0) + 1e-12);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    const vector = Array.from(loaded.sae.weights.W_dec.subarray(best * dIn, (best + 1) * dIn));
    out.set(attribute, { vector, label: { feature: best, separation: bestScore } });
  }
  return out;
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

async function mapLimit<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return out;
}
