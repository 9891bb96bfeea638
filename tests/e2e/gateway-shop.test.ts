import fs from 'node:fs/promises';
import { workspaceFile, writeWorkspace } from '@loupe/common';
import type { SearchDocumentsResponse__Output, SearchRun__Output } from '@loupe/common/grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaptureApi, captureClient, type SaeApi, saeClient } from '../support/grpc.js';
import { runCli } from '../support/process.js';
import { clampFromWeights, importReluSae, RELU_SILENT, reluSae } from '../support/relu-sae.js';
import { type Json, SAE_HOOK, SAE_ID, type Services, startServices } from '../support/workbench.js';

// shopSearch over real capture, SAE, explainer and gateway processes: a small generated catalog is
// indexed through IndexDocuments, and every part of the gateway's answer is compared with what the
// capture and SAE services say over gRPC (SearchDocuments, Encode, Decode).
const PRODUCTS = 60;
const QUERY = 'waterproof hiking boots';
const FEATURES = 16;
// read after the SAE's layer: steering at blocks.1.hook_resid_pre reaches it
const LATE = 'shop-late';
// read at the SAE's own hook: the SAE is found by the collection's hook
const AT_SAE = 'shop-sae-hook';
// a ReLU SAE beside the workbench's TopK one (which refuses CLAMP / ABLATE)
const RELU_ID = 'shop-relu';
const relu = reluSae(31);

let services: Services;
let capture: CaptureApi;
let sae: SaeApi;
let auth: Record<string, string>;

beforeAll(async () => {
  services = await startServices();
  capture = await captureClient(services.env.LOUPE_CAPTURE_ADDR);
  sae = await saeClient(services.env.LOUPE_SAE_ADDR);
  const catalog = { products: PRODUCTS, seed: 3 };
  await capture.IndexDocuments({ collection: LATE, hook: 'blocks.1.hook_resid_post', catalog });
  await capture.IndexDocuments({ collection: AT_SAE, hook: SAE_HOOK, catalog });
  await importReluSae(services.env, RELU_ID, relu);
  const created = await runCli(['apikey', 'create', '--name', 'e2e-shop'], services.env);
  if (created.code !== 0) throw new Error(created.stderr);
  auth = { authorization: `Bearer ${JSON.parse(created.stdout).key}` };
}, 300_000);

afterAll(async () => {
  capture?.close();
  sae?.close();
  await services?.stop();
});

/** The GraphQL answer with its errors (services.gql throws on errors). */
async function raw(query: string, variables: Record<string, unknown>) {
  const response = await fetch(services.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as {
    data?: Json;
    errors?: { message: string; extensions: { code: string } }[];
  };
}

const SHOP = `query ($query: String!, $steering: [SteeringEdit!], $k: Int, $collection: String, $saeId: ID) {
  shopSearch(query: $query, steering: $steering, k: $k, collection: $collection, saeId: $saeId) {
    query saeChoice sae { id hook }
    collection { name model hook pooling dim count }
    queryFeatures { value tokens feature { id index stats { fractionNonzero } explanations(first: 5) { edges { node { text } } } } }
    results { ...R }
    unsteered { ...R }
  } }
  fragment R on ShopResult {
    rank id text title price category attributes metadataJson score
    why { queryValue resultValue feature { id index } }
  }`;

/** A text's top features as the SAE service gives them: feature → max value. */
async function encoded(text: string): Promise<Map<number, number>> {
  const { top } = await sae.Encode({ saeId: SAE_ID, text, perToken: 1, top: FEATURES });
  return new Map(top.map((t) => [t.feature, t.maxValue]));
}

/** Results as the gateway must show them, from SearchDocuments over gRPC. */
function expectSameResults(shown: Json[], run: SearchRun__Output | null) {
  const want = run?.results ?? [];
  expect(shown.length).toBe(want.length);
  expect(shown.length).toBeGreaterThan(0);
  shown.forEach((r, i) => {
    const meta = JSON.parse(want[i].metadataJson);
    expect(r).toMatchObject({
      rank: want[i].rank,
      id: want[i].id,
      text: want[i].text,
      metadataJson: want[i].metadataJson,
      title: meta.title,
      price: meta.price,
      category: meta.category,
      attributes: meta.attributes,
    });
    expect(r.score).toBeCloseTo(want[i].score, 12);
  });
}

describe('shopSearch in the gateway', () => {
  it('lists the collections as ListCollections does', async () => {
    const { collections } = await capture.ListCollections({});
    const { shopCollections } = await services.gql('{ shopCollections { name hook dim count } }');
    expect(shopCollections).toEqual(
      collections.map((c) => ({ name: c.name, hook: c.hook, dim: c.dim, count: Number(c.count) })),
    );
    expect(shopCollections.map((c: Json) => c.name).sort()).toEqual([LATE, AT_SAE]);
    expect(shopCollections[0].count).toBe(PRODUCTS);
  });

  it('returns the results of SearchDocuments, the query features of Encode and their intersections', async () => {
    const { shopSearch: got } = await services.gql(SHOP, {
      query: QUERY,
      k: 8,
      collection: LATE,
      saeId: SAE_ID,
    });
    const want: SearchDocumentsResponse__Output = await capture.SearchDocuments({
      collection: LATE,
      query: QUERY,
      k: 8,
    });
    expect(got.saeChoice).toBe('ARGUMENT');
    expect(got.sae).toEqual({ id: SAE_ID, hook: SAE_HOOK });
    expect(got.collection).toMatchObject({ name: LATE, hook: 'blocks.1.hook_resid_post', count: PRODUCTS });
    expectSameResults(got.results, want.steered);
    expect(got.unsteered).toBeNull();

    const query = await encoded(QUERY);
    expect(query.size).toBeGreaterThan(0);
    expect(got.queryFeatures.map((f: Json) => [f.feature.index, f.value, f.feature.id])).toEqual(
      [...query].map(([index, value]) => [index, Math.fround(value), `tiny/${SAE_ID}/${index}`]),
    );
    // explanations come through Feature.explanations: one explained feature has its explanation, the rest none
    expect(got.queryFeatures.filter((f: Json) => f.feature.explanations.edges.length > 0)).toEqual([]);
    const explained = got.queryFeatures.find((f: Json) => f.feature.stats.fractionNonzero > 0).feature.id;
    const { explain } = await services.gql(
      'mutation ($unit: ID!) { explain(unit: $unit, options: { seed: 1 }) { explanation { text } } }',
      { unit: explained },
      auth,
    );
    const again = (await services.gql(SHOP, { query: QUERY, k: 1, collection: LATE, saeId: SAE_ID }))
      .shopSearch;
    for (const f of again.queryFeatures)
      expect(f.feature.explanations.edges.map((e: Json) => e.node.text)).toEqual(
        f.feature.id === explained ? [explain.explanation.text] : [],
      );

    // why: exactly the features in both top lists, computed here from two independent Encode calls
    let shared = 0;
    for (const result of got.results) {
      const mine = await encoded(result.text);
      const want = [...query].filter(([f]) => mine.has(f));
      expect(result.why.map((w: Json) => [w.feature.index, w.queryValue, w.resultValue])).toEqual(
        want.map(([f, q]) => [f, q, mine.get(f)]),
      );
      shared += want.length;
    }
    // a random SAE still shares features between texts; an empty intersection everywhere would test nothing
    expect(shared).toBeGreaterThan(0);
  });

  it('steers the query by the decoder row of a feature, with the unsteered results alongside', async () => {
    const feature = 5;
    const strength = 30;
    const { shopSearch: got } = await services.gql(SHOP, {
      query: QUERY,
      k: 10,
      collection: LATE,
      saeId: SAE_ID,
      steering: [{ unit: `tiny/${SAE_ID}/${feature}`, strength }],
    });
    // W_dec[feature]: the decode of the one-hot feature minus the decode of nothing (b_dec)
    const [one, none] = await Promise.all([
      sae.Decode({ saeId: SAE_ID, features: [{ feature, value: 1 }] }),
      sae.Decode({ saeId: SAE_ID, features: [] }),
    ]);
    const row = one.vector.map((v, j) => v - none.vector[j]);
    const want = await capture.SearchDocuments({
      collection: LATE,
      query: QUERY,
      k: 10,
      steering: [{ hook: SAE_HOOK, vector: row, strength }],
    });
    expectSameResults(got.results, want.steered);
    expectSameResults(got.unsteered, want.unsteered);
    const plain = await capture.SearchDocuments({ collection: LATE, query: QUERY, k: 10 });
    expectSameResults(got.unsteered, plain.steered);
    // the steering did change the search
    expect(got.results.map((r: Json) => r.score)).not.toEqual(got.unsteered.map((r: Json) => r.score));
  });

  it('clamps a ReLU feature in the query exactly as SearchDocuments does with the SAE file’s weights', async () => {
    const feature = 3;
    const value = 8;
    const { shopSearch: got } = await services.gql(SHOP, {
      query: QUERY,
      k: 10,
      collection: LATE,
      saeId: SAE_ID,
      steering: [{ unit: `tiny/${RELU_ID}/${feature}`, strength: value, mode: 'CLAMP' }],
    });
    // the clamp built here from the weights written to the SAELens file, not through the SAE service
    const want = await capture.SearchDocuments({
      collection: LATE,
      query: QUERY,
      k: 10,
      clamps: [clampFromWeights(relu, feature, value)],
    });
    expectSameResults(got.results, want.steered);
    expectSameResults(got.unsteered, want.unsteered);
    const plain = await capture.SearchDocuments({ collection: LATE, query: QUERY, k: 10 });
    expectSameResults(got.unsteered, plain.steered);
    // the clamp did change the search
    expect(got.results.map((r: Json) => r.score)).not.toEqual(got.unsteered.map((r: Json) => r.score));
  });

  it('ABLATE of a feature that never fires changes nothing; CLAMP of it at c is ADD of c × its decoder row', async () => {
    const unit = `tiny/${RELU_ID}/${RELU_SILENT}`;
    const search = async (steering: Record<string, unknown>[]) =>
      (await services.gql(SHOP, { query: QUERY, k: 10, collection: LATE, steering })).shopSearch;
    // x += (0 − 0) · W_dec[f] adds exact zeros: the same ranking and the same scores, to the last bit
    const ablated = await search([{ unit, mode: 'ABLATE' }]);
    expect(ablated.unsteered).not.toBeNull();
    expect(ablated.results.map((r: Json) => [r.id, r.score])).toEqual(
      ablated.unsteered.map((r: Json) => [r.id, r.score]),
    );
    // with the feature at 0 everywhere, holding it at c adds c · W_dec[f] at every position, as ADD does
    // (the two run different graph paths, so scores agree to float32 rounding)
    const [clamped, added] = await Promise.all([
      search([{ unit, mode: 'CLAMP', strength: 20 }]),
      search([{ unit, mode: 'ADD', strength: 20 }]),
    ]);
    expect(clamped.results.map((r: Json) => r.id)).toEqual(added.results.map((r: Json) => r.id));
    clamped.results.forEach((r: Json, i: number) => {
      expect(Math.abs(r.score - added.results[i].score)).toBeLessThan(1e-5);
    });
    expect(clamped.results.map((r: Json) => r.score)).not.toEqual(
      clamped.unsteered.map((r: Json) => r.score),
    );
  });

  it('finds the SAE by the collection hook when no saeId is given, and searches without one otherwise', async () => {
    const atSae = (await services.gql(SHOP, { query: QUERY, k: 3, collection: AT_SAE })).shopSearch;
    expect(atSae.saeChoice).toBe('HOOK');
    expect(atSae.sae.id).toBe(SAE_ID);
    expect(atSae.queryFeatures.length).toBeGreaterThan(0);
    // the demo workspace's SAE comes first when it reads the collection's hook; a workspace naming an SAE
    // that does not exist (yet) falls back to the hook's newest
    const file = workspaceFile(services.env.LOUPE_DATA_DIR);
    const workspace = (saeId: string) =>
      writeWorkspace(file, {
        version: 1,
        model: 'tiny',
        offline: true,
        status: 'done',
        steps: [],
        saeId,
        updatedAt: '',
      });
    await workspace(SAE_ID);
    const chosen = async (collection: string) =>
      (await services.gql(SHOP, { query: QUERY, k: 3, collection })).shopSearch;
    expect(await chosen(AT_SAE)).toMatchObject({ saeChoice: 'WORKSPACE', sae: { id: SAE_ID } });
    await workspace('not-trained-yet');
    expect(await chosen(AT_SAE)).toMatchObject({ saeChoice: 'HOOK', sae: { id: SAE_ID } });
    // the workspace's SAE reads another hook than LATE's, and no SAE reads LATE's hook
    await workspace(SAE_ID);
    const late = await chosen(LATE);
    await fs.rm(file);
    expect(late).toMatchObject({ saeChoice: 'NONE', sae: null, queryFeatures: [] });
    expect(late.results.every((r: Json) => r.why.length === 0)).toBe(true);
    expectSameResults(
      late.results,
      (await capture.SearchDocuments({ collection: LATE, query: QUERY, k: 3 })).steered,
    );
  });

  it('refuses what it cannot do with BAD_USER_INPUT or NOT_FOUND naming the problem', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [
        { steering: [{ unit: `tiny/${SAE_ID}/5`, strength: 4, mode: 'CLAMP' }] },
        'BAD_USER_INPUT',
        /SAE "tiny-res1" is TopK.*mode CLAMP is not supported for it \(ADD is\)/,
      ],
      [
        { steering: [{ unit: `tiny/${SAE_ID}/5`, mode: 'ABLATE' }] },
        'BAD_USER_INPUT',
        /is TopK.*mode ABLATE is not supported for it \(ADD is\)/,
      ],
      [{ k: 0 }, 'BAD_USER_INPUT', /k must be 1-50/],
      [{ k: 51 }, 'BAD_USER_INPUT', /k must be 1-50/],
      [{ query: '' }, 'BAD_USER_INPUT', /query is empty/],
      [{ collection: 'no-such-shop' }, 'NOT_FOUND', /no-such-shop/],
      [{ saeId: 'no-such-sae' }, 'NOT_FOUND', /no-such-sae/],
    ];
    for (const [change, code, message] of cases) {
      const answer = await raw(SHOP, { query: QUERY, collection: LATE, ...change });
      expect(answer.errors?.[0].extensions.code, JSON.stringify(change)).toBe(code);
      expect(answer.errors?.[0].message).toMatch(message);
    }
  });
});
