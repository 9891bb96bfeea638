import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataset, importDataset } from '../support/openai-dataset.js';
import { runCli } from '../support/process.js';
import { type Json, NEURON_HOOK, SCREENSHOTS, startWorkbench, type Workbench } from '../support/workbench.js';

// OpenAI-format neurons of the tiny model imported with the CLI (layer 1 is also captured by the
// workbench, layer 0 never is), browsed on /published and on their unit pages, each view checked against
// the gateway's own answer to the same question.
const dataset = generateDataset({ layers: 2, neurons: 12, records: 6, length: 12, seed: 5 });
// one explanation only full-text search should find (English stemming: "commas" matches "comma")
const SEARCHED = dataset.find((n) => n.layer === 1 && n.neuron === 7)!;
SEARCHED.explanations[1].explanation = 'commas between French numbers';
const UNCAPTURED = dataset.find((n) => n.layer === 0 && n.neuron === 3)!;
const uncapturedId = `tiny/blocks.0.mlp.hook_post/${UNCAPTURED.neuron}`;

let bench: Workbench;
let folder: string;

beforeAll(async () => {
  bench = await startWorkbench();
  folder = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-published-web-'));
  await importDataset(folder, dataset, bench.env);
}, 300_000);

afterAll(async () => {
  await bench?.stop();
  if (folder) await fs.rm(folder, { recursive: true, force: true });
});

const LIST = `query ($minScore: Float, $layer: Int) {
  publishedNeurons(model: "tiny", minScore: $minScore, layer: $layer, first: 50) {
    totalCount edges { score node { unitId } }
  }
}`;

async function listed(page: Json): Promise<[string, number][]> {
  return page
    .locator('.published-list tr[data-unit]')
    .evaluateAll((rows: Element[]) =>
      rows.map((tr) => [tr.getAttribute('data-unit'), Number(tr.getAttribute('data-score'))]),
    );
}

describe('published neurons in Chromium', () => {
  it('lists them by published score, filters to ≥ 0.8 in one click and by layer from the URL', async () => {
    const all = (await bench.gql(LIST, {})).publishedNeurons;
    expect(all.totalCount).toBe(dataset.length);
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(bench.web.url);
    await Promise.all([page.waitForURL('**/published?model=tiny'), page.click('a.published-link')]);
    expect(await listed(page)).toEqual(all.edges.map((e: Json) => [e.node.unitId, e.score]));
    // independently of the gateway: best published score of each neuron, largest first
    const scores = (await listed(page)).map(([, s]) => s);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const best = (n: (typeof dataset)[number]) =>
      Math.max(...n.explanations.map((e) => e.score ?? Number.NEGATIVE_INFINITY));
    expect(scores[0]).toBe(Math.max(...dataset.map(best)));

    await Promise.all([page.waitForURL('**minScore=0.8**'), page.click('a.good-scores')]);
    const good = (await bench.gql(LIST, { minScore: 0.8 })).publishedNeurons;
    expect(good.totalCount).toBe(dataset.filter((n) => best(n) >= 0.8).length);
    expect(good.totalCount).toBeGreaterThan(0);
    expect(await listed(page)).toEqual(good.edges.map((e: Json) => [e.node.unitId, e.score]));
    await expect(page.locator('h2', { hasText: 'neurons' }).first().textContent()).resolves.toBe(
      `${good.totalCount} neurons scoring ≥ 0.8`,
    );

    await page.goto(`${bench.web.url}/published?model=tiny&layer=0`);
    const layer0 = (await bench.gql(LIST, { layer: 0 })).publishedNeurons;
    expect(await listed(page)).toEqual(layer0.edges.map((e: Json) => [e.node.unitId, e.score]));
    expect(layer0.edges.every((e: Json) => e.node.unitId.startsWith('tiny/blocks.0.'))).toBe(true);
    // a bad number in the URL is named, not a crash
    await page.goto(`${bench.web.url}/published?model=tiny&minScore=high`);
    await expect(page.locator('.error').textContent()).resolves.toContain('minScore "high" is not a number');
    await page.close();
  });

  it('draws the per-layer picture from publishedScoresByLayer and searches the explanations', async () => {
    const { publishedScoresByLayer: picture } = await bench.gql(
      '{ publishedScoresByLayer(model: "tiny", threshold: 0.8) { edges layers { layer neurons mean atLeastThreshold histogram } } }',
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/published?model=tiny`);
    const columns = await page.locator('.score-picture g[data-layer]').evaluateAll((groups) =>
      groups.map((g) => ({
        layer: Number(g.getAttribute('data-layer')),
        neurons: Number(g.getAttribute('data-neurons')),
        mean: Number(g.getAttribute('data-mean')),
        atLeastThreshold: Number(g.getAttribute('data-at-least')),
        histogram: [...g.querySelectorAll('rect[data-bin]')].map((r) => Number(r.getAttribute('data-count'))),
        // bar heights follow the bin edges: every bin drawn the same height
        heights: [...g.querySelectorAll('rect[data-bin]')].map((r) => Number(r.getAttribute('height'))),
      })),
    );
    expect(columns.map(({ heights: _, ...c }) => c)).toEqual(picture.layers);
    expect(columns.map((c) => c.layer)).toEqual([0, 1]);
    for (const c of columns) {
      expect(c.histogram).toHaveLength(picture.edges.length - 1);
      for (const h of c.heights) expect(h).toBeCloseTo(c.heights[0], 6);
      // the picture agrees with the dataset itself, not only with the gateway
      expect(c.neurons).toBe(dataset.filter((n) => n.layer === c.layer).length);
    }
    await page.screenshot({ path: path.join(SCREENSHOTS, 'published.png'), fullPage: true });

    // a layer's column opens that layer's list
    await Promise.all([page.waitForURL('**layer=1**'), page.click('.score-picture a >> nth=1')]);
    await expect(page.locator('select[name=layer]').inputValue()).resolves.toBe('1');

    await page.goto(`${bench.web.url}/published?model=tiny`);
    await page.fill('input[name=q]', 'comma');
    await Promise.all([page.waitForURL('**q=comma**'), page.click('.published-filter button[type=submit]')]);
    const { searchExplanations } = await bench.gql(
      '{ searchExplanations(query: "comma", unitPrefix: "tiny/", first: 25) { edges { node { id } explanation { text } } } }',
    );
    const hits = await page
      .locator('.search-hits li[data-unit]')
      .evaluateAll((items) =>
        items.map((li) => [li.getAttribute('data-unit'), li.querySelector('q')?.textContent]),
      );
    expect(hits).toEqual(searchExplanations.edges.map((e: Json) => [e.node.id, e.explanation.text]));
    expect(hits).toEqual([
      [`tiny/blocks.1.mlp.hook_post/${SEARCHED.neuron}`, 'commas between French numbers'],
    ]);
    await page.close();
  });

  it("opens a never-captured imported neuron's page from its published records", async () => {
    // the gateway's unit(id) has no records for it: the page falls back to the published view
    const answer = await fetch(bench.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ unit(id: "${uncapturedId}") { id } }` }),
    }).then((r) => r.json() as Promise<Json>);
    expect(answer.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const { publishedNeuron: p } = await bench.gql(
      `query ($id: ID!) { publishedNeuron(unitId: $id) { bestScore top { activations }
        explanations(first: 5) { edges { node { text score { value } } } } } }`,
      { id: uncapturedId },
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/units/${uncapturedId}`);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Neuron ${UNCAPTURED.neuron}`);
    await expect(page.locator('.published-summary').getAttribute('data-best-score')).resolves.toBe(
      String(p.bestScore),
    );
    const explanations = await page
      .locator('.explanations .explanation')
      .evaluateAll((items) =>
        items.map((li) => [li.querySelector('q')?.textContent, li.getAttribute('data-score')]),
      );
    expect(explanations).toEqual(
      p.explanations.edges.map((e: Json) => [
        e.node.text,
        e.node.score.value === null ? '' : String(e.node.score.value),
      ]),
    );
    expect(explanations.map(([text]) => text).sort()).toEqual(
      UNCAPTURED.explanations.map((e) => e.explanation).sort(),
    );
    // the published top windows, in published order, with the dataset's activations
    const windows = await page
      .locator('.published-window')
      .evaluateAll((items) =>
        items.map((li) =>
          [...li.querySelectorAll('.token')].map((s) => Number(s.getAttribute('data-value'))),
        ),
      );
    expect(windows).toEqual(UNCAPTURED.top.map((r) => r.activations));
    expect(windows).toEqual(p.top.map((r: Json) => r.activations));
    // re-scoring opens the scoring form with the unit filled in
    await Promise.all([page.waitForURL('**/jobs?units=**'), page.click('a.rescore-link >> nth=0')]);
    await expect(page.locator('.scoring-form input[name=units]').inputValue()).resolves.toBe(uncapturedId);
    // started from there, the configured simulator (the stack's statistical baseline) scores the
    // published records, and the page lists its score beside OpenAI's
    const created = await runCli(['apikey', 'create', '--name', 'browser-published'], bench.env);
    await page.fill('input[name=apiKey]', JSON.parse(created.stdout).key);
    await page.click('.scoring-form button[type=submit]');
    await page.waitForURL(/\/jobs\?scoring=/);
    await page.locator('.job-status[data-status=done]').waitFor({ timeout: 60_000 });
    const after = (
      await bench.gql(
        `query ($id: ID!) { publishedNeuron(unitId: $id) {
          explanations(first: 5) { totalCount edges { node { text baseline score { value } } } } } }`,
        { id: uncapturedId },
      )
    ).publishedNeuron.explanations;
    expect(after.totalCount).toBe(UNCAPTURED.explanations.length + 1);
    const rescore = after.edges.find((e: Json) => e.node.baseline).node;
    await page.goto(`${bench.web.url}/units/${uncapturedId}`);
    const shown = await page
      .locator('.explanations .explanation')
      .evaluateAll((items) =>
        items.map((li) => [li.querySelector('q')?.textContent, li.getAttribute('data-score')]),
      );
    expect(shown).toContainEqual([
      rescore.text,
      rescore.score.value === null ? '' : String(rescore.score.value),
    ]);
    expect(shown).toHaveLength(after.totalCount);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'published-unit.png'), fullPage: true });
    await page.close();
  });

  it("shows a captured imported neuron's published score beside Loupe's records", async () => {
    const id = `tiny/${NEURON_HOOK}/${SEARCHED.neuron}`;
    const { unit } = await bench.gql(
      `query ($id: ID!) { unit(id: $id) { ... on Neuron { captureJobId published { bestScore }
        explanations(first: 5) { edges { node { text explainerModel } } } } } }`,
      { id },
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/units/${id}`);
    await expect(page.locator('.muted').first().textContent()).resolves.toContain(unit.captureJobId);
    await expect(page.locator('.published-summary').getAttribute('data-best-score')).resolves.toBe(
      String(unit.published.bestScore),
    );
    const texts = await page.locator('.explanations .explanation q').allTextContents();
    expect(texts).toEqual(unit.explanations.edges.map((e: Json) => e.node.text));
    expect(unit.explanations.edges.some((e: Json) => /published by OpenAI/.test(e.node.explainerModel))).toBe(
      true,
    );
    await expect(page.locator('.records .window').count()).resolves.toBeGreaterThan(0);
    await page.close();
  });
});
