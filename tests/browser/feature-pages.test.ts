import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  busiestFeature,
  D_SAE,
  type Json,
  SAE_ID,
  SCREENSHOTS,
  startWorkbench,
  TEXTS,
  type Workbench,
} from '../support/workbench.js';

// Feature pages, browsing and "which features fire on this text", each checked against the gateway's
// own answer for the same question.
let bench: Workbench;
let feature: number;

beforeAll(async () => {
  bench = await startWorkbench();
  feature = await busiestFeature(bench);
});

afterAll(async () => {
  await bench?.stop();
});

describe('feature pages in Chromium', () => {
  it('shows a feature: SAE link, frequency, logit tokens, nearest features and records as the gateway does', async () => {
    const id = `tiny/${SAE_ID}/${feature}`;
    const { unit } = await bench.gql(
      `query ($id: ID!) { unit(id: $id) { stats { fractionNonzero } top(first: 20) { edges { node { window values } } }
        ... on Feature { sae { id } positiveLogits { token { id } value } negativeLogits { token { id } value }
          nearest(first: 10) { edges { cosine node { id } } } } } }`,
      { id },
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/units/${id}`);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Feature ${feature}`);
    await expect(page.locator('a.sae-link').getAttribute('href')).resolves.toBe(`/saes/${SAE_ID}`);
    await expect(page.locator('.stats').textContent()).resolves.toContain(
      `frequency${(100 * unit.stats.fractionNonzero).toFixed(2)}%`,
    );
    const rows = (selector: string) =>
      page
        .locator(`${selector} tr`)
        .evaluateAll((trs) =>
          trs.map((tr) => [Number(tr.getAttribute('data-token-id')), Number(tr.getAttribute('data-value'))]),
        );
    expect(await rows('.positive-logits')).toEqual(
      unit.positiveLogits.map((t: Json) => [t.token.id, t.value]),
    );
    expect(await rows('.negative-logits')).toEqual(
      unit.negativeLogits.map((t: Json) => [t.token.id, t.value]),
    );
    const nearest = await page
      .locator('.nearest a')
      .evaluateAll((links) =>
        links.map((a) => [a.getAttribute('href'), Number(a.getAttribute('data-cosine'))]),
      );
    expect(nearest).toEqual(unit.nearest.edges.map((e: Json) => [`/units/${e.node.id}`, e.cosine]));
    const windows = await page
      .locator('.records .window')
      .evaluateAll((items) => items.map((li) => Number(li.getAttribute('data-window'))));
    expect(windows).toEqual(unit.top.edges.map((e: Json) => e.node.window));
    expect(windows.length).toBeGreaterThan(0);
    // on a phone nothing is wider than the screen (tables scroll in their own box)
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(page.evaluate(() => document.documentElement.scrollWidth)).resolves.toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'feature-page-phone.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
    await expect(page.locator('a.steer-link').getAttribute('href')).resolves.toBe(
      `/steer?unit=${encodeURIComponent(id)}&strength=10`,
    );
    // the nearest link opens that feature
    await Promise.all([page.waitForURL(`**${nearest[0][0]}`), page.click('.nearest a >> nth=0')]);
    await expect(page.locator('h1').textContent()).resolves.toMatch(/^Feature \d+$/);
    await page.close();
  });

  it('browses model → SAEs with metrics → features by index', async () => {
    const { sae } = await bench.gql(`{ sae(id: "${SAE_ID}") { metrics { l0 } dSae } }`);
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(bench.web.url);
    await Promise.all([page.waitForURL('**/models/tiny'), page.click('text=browse SAEs and hooks')]);
    const row = page.locator(`tr[data-sae="${SAE_ID}"]`);
    await expect(row.locator('td[data-metric=l0]').getAttribute('data-value')).resolves.toBe(
      sae.metrics ? String(sae.metrics.l0) : '',
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'browse.png') });
    await Promise.all([page.waitForURL(`**/saes/${SAE_ID}`), row.locator('a').click()]);
    // the SAE's features by max activation, as saeFeatures lists them
    const { saeFeatures } = await bench.gql(
      `{ saeFeatures(saeId: "${SAE_ID}", first: 50) { totalCount edges { node { id stats { maxActivation } } } } }`,
    );
    expect(saeFeatures.totalCount).toBe(D_SAE);
    const listed = await page
      .locator('.unit-list tr[data-unit]')
      .evaluateAll((rows) => rows.map((tr) => tr.getAttribute('data-unit')));
    expect(listed).toEqual(saeFeatures.edges.map((e: Json) => e.node.id));
    // the feature-density histogram: one bar per bin featureDensity gives
    const { sae: density } = await bench.gql(
      `{ sae(id: "${SAE_ID}") { featureDensity { dead bins { count } } } }`,
    );
    const bars = page.locator('.feature-density svg rect');
    await expect(bars.count()).resolves.toBe(density.featureDensity.bins.length);
    await expect(page.locator('.feature-density [data-dead]').getAttribute('data-dead')).resolves.toBe(
      String(density.featureDensity.dead),
    );
    await page.fill('input[name=index]', String(feature));
    await Promise.all([
      page.waitForURL(`**/units/tiny/${SAE_ID}/${feature}`),
      page.click('button[type=submit]'),
    ]);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Feature ${feature}`);
    await page.close();
  });

  it('search: the per-token heat maps of pasted text equal encode’s values, with links to the top features', async () => {
    const text = TEXTS[2];
    const { encode } = await bench.gql(
      `query ($text: String!) { encode(text: $text, saeId: "${SAE_ID}", perToken: 64, top: 20) {
        tokens { token { text } l0 features { value feature { id } } } top { maxValue feature { id } } } }`,
      { text },
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/search`);
    await page.selectOption('select[name=sae]', SAE_ID);
    await page.fill('textarea[name=text]', text);
    await Promise.all([page.waitForURL('**/search?**'), page.click('.search-form button')]);
    const shown = await page.locator('.top-features > li').evaluateAll((items) =>
      items.map((li) => ({
        id: li.getAttribute('data-feature'),
        values: [...li.querySelectorAll('.token')].map((s) => Number(s.getAttribute('data-value'))),
        tokens: [...li.querySelectorAll('.token')].map((s) => s.textContent),
      })),
    );
    expect(shown.map((s) => s.id)).toEqual(encode.top.map((t: Json) => t.feature.id));
    for (const s of shown) {
      // the feature's value at each token, from encode's per-token lists (TopK k=8 < perToken: all listed)
      const want = encode.tokens.map(
        (t: Json) => t.features.find((f: Json) => f.feature.id === s.id)?.value ?? 0,
      );
      expect(s.values).toEqual(want);
      expect(Math.max(...s.values)).toBe(encode.top.find((t: Json) => t.feature.id === s.id).maxValue);
    }
    expect(shown[0].tokens.join('')).toBe(text);
    const l0 = await page
      .locator('.tokens-l0 .token')
      .evaluateAll((spans) => spans.map((s) => Number(s.getAttribute('data-l0'))));
    expect(l0).toEqual(encode.tokens.map((t: Json) => t.l0));
    // TopK: every token has k features, so the strip shades each token by their summed activation
    const sums = await page
      .locator('.tokens-l0 .token')
      .evaluateAll((spans) => spans.map((s) => Number(s.getAttribute('data-sum'))));
    const summed = encode.tokens.map((t: Json) => t.features.reduce((a: number, f: Json) => a + f.value, 0));
    for (const [i, sum] of sums.entries()) expect(sum).toBeCloseTo(summed[i], 9);
    await expect(page.locator('.top-features .max').allTextContents()).resolves.not.toContainEqual(
      expect.stringMatching(/· 1 tokens$/),
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'search.png') });
    await Promise.all([
      page.waitForURL(`**/units/${encode.top[0].feature.id}`),
      page.click('.feature-link >> nth=0'),
    ]);
    await page.close();

    // the same form without JavaScript: a plain GET the server answers
    const context = await bench.browser.newContext({ javaScriptEnabled: false });
    const bare = await context.newPage();
    await bare.goto(`${bench.web.url}/search?sae=${SAE_ID}&text=${encodeURIComponent(text)}`);
    await expect(bare.locator('.top-features > li').count()).resolves.toBe(encode.top.length);
    await context.close();
  });

  it('says what is wrong for a feature out of range and an unknown SAE', async () => {
    const page = await bench.browser.newPage();
    await page.goto(`${bench.web.url}/units/tiny/${SAE_ID}/${D_SAE}`);
    await expect(page.locator('.error[role=alert]').getAttribute('data-code')).resolves.toBe('NOT_FOUND');
    await page.goto(`${bench.web.url}/saes/nope`);
    await expect(page.locator('.error[role=alert]').textContent()).resolves.toMatch(/unknown SAE "nope"/);
    await page.goto(`${bench.web.url}/search?sae=nope&text=hi`);
    await expect(page.locator('.error[role=alert]').textContent()).resolves.toMatch(/nope/);
    // no catalog indexed here: the shop says how to get one instead of showing NOT_FOUND
    await page.goto(`${bench.web.url}/shop?q=boots`);
    await expect(page.locator('.no-collections').textContent()).resolves.toContain(
      'npx loupe demo shop index',
    );
    await expect(page.locator('.error[role=alert]').count()).resolves.toBe(0);
    await page.close();
  });
});
