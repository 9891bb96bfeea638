import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaptureApi, captureClient, saeClient } from '../support/grpc.js';
import { runCli } from '../support/process.js';
import { importReluSae, reluSae } from '../support/relu-sae.js';
import { type Json, SAE_ID, startWorkbench, type Workbench } from '../support/workbench.js';

// The shop page in Chromium over a small generated catalog: what it shows (results, query features,
// "why", the steered column) equals the gateway's shopSearch answer for the same search, and its URL
// restores the search and its steering, rendered on the server so it works without JavaScript too.
const QUERY = 'waterproof hiking boots';
const K = 5;
const STRENGTH = 30;
// a ReLU SAE, whose features can be clamped (the workbench's TopK SAE refuses CLAMP)
const RELU_ID = 'shop-relu';
const CLAMP = 8;

let bench: Workbench;
let capture: CaptureApi;

beforeAll(async () => {
  bench = await startWorkbench();
  capture = await captureClient(bench.env.LOUPE_CAPTURE_ADDR);
  // the SAE service starts alongside the gateway: wait until it answers
  (await saeClient(bench.env.LOUPE_SAE_ADDR)).close();
  // "shop", the page's default collection, read after the SAE's layer so its steering reaches it
  await capture.IndexDocuments({
    collection: 'shop',
    hook: 'blocks.1.hook_resid_post',
    catalog: { products: 60, seed: 5 },
  });
  await importReluSae(bench.env, RELU_ID, reluSae(31));
}, 300_000);

afterAll(async () => {
  capture?.close();
  await bench?.stop();
});

const SHOP = `query ($query: String!, $steering: [SteeringEdit!], $k: Int, $saeId: ID) {
  shopSearch(query: $query, steering: $steering, k: $k, saeId: $saeId) {
    queryFeatures { feature { id stats { fractionNonzero } } }
    results { ...R }
    unsteered { ...R }
  } }
  fragment R on ShopResult { id title price attributes why { feature { index } } }`;

// the ReLU SAE has no feature records (so no stats): only what the page shows
const CLAMP_SHOP = `query ($query: String!, $steering: [SteeringEdit!], $k: Int, $saeId: ID) {
  shopSearch(query: $query, steering: $steering, k: $k, saeId: $saeId) {
    queryFeatures { feature { id } }
    results { ...R }
    unsteered { ...R }
  } }
  fragment R on ShopResult { id title price attributes }`;

const PRICE = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

/** What a column of the page shows, card by card. */
function column(page: import('playwright-core').Page, name: string) {
  return page.locator(`[data-column=${name}] li[data-id]`).evaluateAll((cards) =>
    cards.map((card) => ({
      id: card.getAttribute('data-id'),
      title: card.querySelector('.title')?.textContent,
      price: card.querySelector('.price')?.textContent ?? null,
      attributes: [...card.querySelectorAll('.attributes li')].map((li) => li.textContent),
    })),
  );
}

function shown(results: Json[]) {
  return results.map((r) => ({
    id: r.id,
    title: r.title,
    price: r.price === null ? null : PRICE.format(r.price),
    attributes: r.attributes,
  }));
}

describe('shop page in Chromium', () => {
  it('searches, explains and steers exactly as the gateway answers', async () => {
    const { shopSearch: want } = await bench.gql(SHOP, { query: QUERY, k: K, saeId: SAE_ID });
    expect(want.results.length).toBe(K);
    // one of the query's features explained (by the explainer's baseline), so its row shows the text
    const created = await runCli(['apikey', 'create', '--name', 'browser-shop'], bench.env);
    if (created.code !== 0) throw new Error(created.stderr);
    const explained = want.queryFeatures.find((f: Json) => f.feature.stats.fractionNonzero > 0).feature.id;
    const { explain } = await bench.gql(
      'mutation ($unit: ID!) { explain(unit: $unit, options: { seed: 1 }) { explanation { text } } }',
      { unit: explained },
      { authorization: `Bearer ${JSON.parse(created.stdout).key}` },
    );

    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/shop?sae=${SAE_ID}`);
    await page.fill('input[name=q]', QUERY);
    await page.fill('input[name=k]', String(K));
    await page.click('button[type=submit]');
    await page.locator('[data-column=results]').waitFor();
    await expect(column(page, 'results')).resolves.toEqual(shown(want.results));
    await expect(
      page
        .locator('.query-features .feature')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-unit'))),
    ).resolves.toEqual(want.queryFeatures.map((f: Json) => f.feature.id));
    await expect(page.locator(`.feature[data-unit="${explained}"] .explanation`).textContent()).resolves.toBe(
      `${explain.explanation.text} (baseline)`,
    );

    // why: the first card's shared features, as the gateway lists them
    const first = page.locator('[data-column=results] li[data-id] >> nth=0');
    await first.locator('summary').click();
    await expect(
      first
        .locator('.why li')
        .evaluateAll((items) => items.map((i) => Number(i.getAttribute('data-feature')))),
    ).resolves.toEqual(want.results[0].why.map((w: Json) => w.feature.index));

    // steering the first query feature brings the steered column beside the unsteered one
    const unit = want.queryFeatures[0].feature.id;
    const { shopSearch: steered } = await bench.gql(SHOP, {
      query: QUERY,
      k: K,
      saeId: SAE_ID,
      steering: [{ unit, strength: STRENGTH }],
    });
    expect(steered.results.map((r: Json) => r.id)).not.toEqual([]);
    await page.locator(`.feature[data-unit="${unit}"] input[type=range]`).fill(String(STRENGTH));
    await page.locator('[data-column=steered]').waitFor();
    await expect.poll(() => column(page, 'steered')).toEqual(shown(steered.results));
    await expect(column(page, 'unsteered')).resolves.toEqual(shown(steered.unsteered));
    await page.waitForURL(/strength=30/);
    const top = page.locator('[data-column=steered] li[data-id] >> nth=0');
    await top.locator('summary').click();
    await expect(
      top.locator('.why li').evaluateAll((items) => items.map((i) => Number(i.getAttribute('data-feature')))),
    ).resolves.toEqual(steered.results[0].why.map((w: Json) => w.feature.index));

    // the address bar holds the search and its steering: without JavaScript the server renders the same
    const shared = page.url();
    expect(new URL(shared).searchParams.getAll('unit')).toEqual([unit]);
    await page.close();
    const context = await bench.browser.newContext({ javaScriptEnabled: false });
    const bare = await context.newPage();
    await bare.goto(shared);
    await expect(bare.locator('input[name=q]').inputValue()).resolves.toBe(QUERY);
    await expect(column(bare, 'steered')).resolves.toEqual(shown(steered.results));
    await expect(column(bare, 'unsteered')).resolves.toEqual(shown(steered.unsteered));
    await context.close();
  }, 120_000);

  it('clamps a query feature at a value and shows the steered results the gateway gives', async () => {
    const { shopSearch: plain } = await bench.gql(CLAMP_SHOP, { query: QUERY, k: K, saeId: RELU_ID });
    const unit = plain.queryFeatures[0].feature.id;
    const { shopSearch: want } = await bench.gql(CLAMP_SHOP, {
      query: QUERY,
      k: K,
      saeId: RELU_ID,
      steering: [{ unit, strength: CLAMP, mode: 'CLAMP' }],
    });
    expect(want.unsteered).not.toBeNull();
    // the clamp changes what the page shows, so the steered column cannot pass for the unsteered one
    expect(shown(want.results)).not.toEqual(shown(want.unsteered));

    const page = await bench.browser.newPage();
    await page.goto(`${bench.web.url}/shop?sae=${RELU_ID}&q=${encodeURIComponent(QUERY)}&k=${K}`);
    await expect(column(page, 'results')).resolves.toEqual(shown(plain.results));
    const row = page.locator(`.feature[data-unit="${unit}"]`);
    await row.locator('select[name=mode]').selectOption('CLAMP');
    // clamp mode at 0 ablates the feature: a steered search already
    await expect.poll(() => row.locator('output.strength').textContent()).toBe('ablated');
    await row.locator('input[type=range]').fill(String(CLAMP));
    await expect.poll(() => row.locator('output.strength').textContent()).toBe(`= ${CLAMP}`);
    await page.waitForURL(/mode=CLAMP/);
    await expect.poll(() => column(page, 'steered')).toEqual(shown(want.results));
    await expect(column(page, 'unsteered')).resolves.toEqual(shown(want.unsteered));
    const params = new URL(page.url()).searchParams;
    expect([params.getAll('unit'), params.getAll('strength'), params.getAll('mode')]).toEqual([
      [unit],
      [String(CLAMP)],
      ['CLAMP'],
    ]);

    // the link restores the clamp, rendered on the server without JavaScript
    const shared = page.url();
    await page.close();
    const context = await bench.browser.newContext({ javaScriptEnabled: false });
    const bare = await context.newPage();
    await bare.goto(shared);
    const bareRow = bare.locator(`.feature[data-unit="${unit}"]`);
    await expect(bareRow.locator('select[name=mode]').inputValue()).resolves.toBe('CLAMP');
    await expect(bareRow.locator('input[type=range]').inputValue()).resolves.toBe(String(CLAMP));
    await expect(column(bare, 'steered')).resolves.toEqual(shown(want.results));
    await context.close();
  });

  it('offers every collection, and searches the chosen one (without JavaScript too)', async () => {
    await capture.IndexDocuments({ collection: 'shop-small', catalog: { products: 20, seed: 9 } });
    const { shopSearch: want } = await bench.gql(
      'query { shopSearch(query: "boots", k: 3, collection: "shop-small") { results { id title price attributes } } }',
    );
    const context = await bench.browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${bench.web.url}/shop?q=boots&k=3&collection=shop-small`);
    await expect(
      page
        .locator('select[name=collection] option')
        .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value)),
    ).resolves.toEqual(['shop', 'shop-small']);
    await expect(page.locator('select[name=collection]').inputValue()).resolves.toBe('shop-small');
    await expect(column(page, 'results')).resolves.toEqual(shown(want.results));
    await context.close();
  });

  it('says what to do for a collection that is not there, and shows the gateway’s error for a search it refuses', async () => {
    const page = await bench.browser.newPage();
    await page.goto(`${bench.web.url}/shop?q=boots&collection=no-such-shop`);
    // not a NOT_FOUND box: which collections there are, and the command that makes this one
    const hint = page.locator('.no-collections');
    await expect(hint.textContent()).resolves.toMatch(
      /no collection "no-such-shop" \(there are "shop", "shop-small"\)/,
    );
    await expect(hint.locator('code').textContent()).resolves.toBe(
      'npx loupe demo shop index --collection no-such-shop',
    );
    await expect(page.locator('.error[role=alert]').count()).resolves.toBe(0);
    await page.goto(`${bench.web.url}/shop?q=boots&k=99`);
    const alert = page.locator('.error[role=alert]');
    await expect(alert.getAttribute('data-code')).resolves.toBe('BAD_USER_INPUT');
    await expect(alert.textContent()).resolves.toMatch(/k must be 1-50, got 99/);
    await page.close();
  });
});
