import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/process.js';
import {
  busiestFeature,
  type Json,
  NEURON_HOOK,
  SAE_ID,
  SCREENSHOTS,
  startWorkbench,
  type Workbench,
} from '../support/workbench.js';

// Explanations in the browser: written by the explainer's baseline through the gateway, then shown on
// unit pages with their scores, found by explanation search, and ordering the browse lists by score.
let bench: Workbench;
const explained = new Map<string, Json>();
let auth: Record<string, string>;
let key: string;

const EXPLAIN = `mutation ($unit: ID!) { explain(unit: $unit, options: { seed: 3 }) {
  explanation { id text score { method value ciLow ciHigh provenance { simulatorMethod recordSplit } } } } }`;

beforeAll(async () => {
  bench = await startWorkbench();
  const created = await runCli(['apikey', 'create', '--name', 'browser-explanations'], bench.env);
  if (created.code !== 0) throw new Error(created.stderr);
  key = JSON.parse(created.stdout).key;
  auth = { authorization: `Bearer ${key}` };
  const units = [
    `tiny/${NEURON_HOOK}/3`,
    `tiny/${NEURON_HOOK}/5`,
    `tiny/${SAE_ID}/${await busiestFeature(bench)}`,
  ];
  for (const unit of units)
    explained.set(unit, (await bench.gql(EXPLAIN, { unit }, auth)).explain.explanation);
});

afterAll(async () => {
  await bench?.stop();
});

describe('explanations in Chromium', () => {
  it('unit pages show the stored explanation with its score and interval', async () => {
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    for (const [unit, explanation] of explained) {
      await page.goto(`${bench.web.url}/units/${unit}`);
      const shown = page.locator(`.explanation[data-explanation="${explanation.id}"]`);
      await expect(shown.locator('q').textContent()).resolves.toBe(explanation.text);
      await expect(shown.getAttribute('data-score')).resolves.toBe(String(explanation.score.value ?? ''));
      if (explanation.score.ciLow !== null)
        await expect(shown.locator('.score').textContent()).resolves.toContain(
          `[${explanation.score.ciLow.toFixed(3)}, ${explanation.score.ciHigh.toFixed(3)}]`,
        );
      await expect(shown.locator('.badge').textContent()).resolves.toBe('baseline');
      // which simulator and which record split produced the score, as the API says (a unit with fewer
      // than 4 top windows falls back from OpenAI's split to halves)
      const { simulatorMethod, recordSplit } = explanation.score.provenance;
      expect(simulatorMethod).toBe('baseline');
      expect(['openai', 'halves']).toContain(recordSplit);
      await expect(
        shown.locator('[data-simulator-method]').getAttribute('data-simulator-method'),
      ).resolves.toBe(simulatorMethod);
      await expect(shown.locator('[data-record-split]').getAttribute('data-record-split')).resolves.toBe(
        recordSplit,
      );
      await expect(shown.locator('.provenance').textContent()).resolves.toContain(
        `on the ${recordSplit} record split`,
      );
    }
    await page.screenshot({ path: path.join(SCREENSHOTS, 'unit-explanations.png') });
    await page.close();
  });

  it('search by explanation text lists the units the gateway finds, with links', async () => {
    const [unit, explanation] = [...explained][0];
    const words = explanation.text.replace(/[^A-Za-z0-9\s]/g, ' ');
    const { searchExplanations } = await bench.gql(
      'query ($q: String!) { searchExplanations(query: $q, first: 25) { edges { node { id } explanation { id } } } }',
      { q: words },
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/search`);
    await page.fill('input[name=q]', words);
    await Promise.all([page.waitForURL('**/search?q=**'), page.click('.explanation-search button')]);
    const hits = await page
      .locator('.explanation-hits li')
      .evaluateAll((items) =>
        items.map((li) => [li.getAttribute('data-unit'), li.getAttribute('data-explanation')]),
      );
    expect(hits).toEqual(searchExplanations.edges.map((e: Json) => [e.node.id, e.explanation.id]));
    expect(hits).toContainEqual([unit, explanation.id]);
    await Promise.all([
      page.waitForURL(`**/units/${unit}`),
      page.click(`.explanation-hits li[data-unit="${unit}"] a`),
    ]);
    await page.close();
  });

  it('a hook’s neurons sort by score, frequency and max activation as hookUnits orders them', async () => {
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/models/tiny`);
    await Promise.all([page.waitForURL(`**/hooks/tiny/${NEURON_HOOK}`), page.click(`text=${NEURON_HOOK}`)]);
    for (const order of ['SCORE', 'FREQUENCY', 'MAX_ACTIVATION']) {
      const { hookUnits } = await bench.gql(
        `query ($order: UnitOrder) { hookUnits(hook: "${NEURON_HOOK}", orderBy: $order, first: 50) { edges { score node { id } } } }`,
        { order },
      );
      await Promise.all([
        page.waitForURL(`**?order=${order}`),
        page.click(`nav.tabs a[href="?order=${order}"]`),
      ]);
      const rows = await page
        .locator('.unit-list tr[data-unit]')
        .evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-unit'), tr.getAttribute('data-score')]));
      expect(rows, order).toEqual(
        hookUnits.edges.map((e: Json) => [e.node.id, e.score === null ? '' : String(e.score)]),
      );
      if (order === 'SCORE') {
        // the two explained neurons come first, each with its explanation
        expect(
          rows
            .slice(0, 2)
            .map((r) => r[0])
            .sort(),
        ).toEqual([`tiny/${NEURON_HOOK}/3`, `tiny/${NEURON_HOOK}/5`]);
        await page.screenshot({ path: path.join(SCREENSHOTS, 'hook-neurons.png') });
      }
    }
    await page.close();
  });

  it('compares simulated and true activations of the best explanation on the same tokens', async () => {
    const unit = `tiny/${NEURON_HOOK}/3`;
    const { unit: data } = await bench.gql(
      `query ($id: ID!) { unit(id: $id) { explanations(first: 1) { edges { node { text } } }
        top(first: 100) { edges { node { window values } } } random(first: 100) { edges { node { window values } } } } }`,
      { id: unit },
    );
    const text = data.explanations.edges[0].node.text;
    const { score } = await bench.gql(
      `mutation ($unit: ID!, $text: String!) { score(unit: $unit, explanation: $text, method: SIMULATION,
        options: { seed: 0, save: false }) { score { provenance { recordIds { top random } } } simulatedTop { values } simulatedRandom { values } } }`,
      { unit, text },
      auth,
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/jobs`);
    await page.evaluate((k) => window.localStorage.setItem('loupe.apiKey', k), key);
    await page.goto(`${bench.web.url}/units/${unit}`);
    await page.click('button.simulate');
    await page.locator('.compared li').first().waitFor();
    const rows = await page.locator('.compared li').evaluateAll((items) =>
      items.map((li) => ({
        id: li.getAttribute('data-record'),
        truth: [...li.querySelectorAll('.true-values .token')].map((t) =>
          Number(t.getAttribute('data-value')),
        ),
        simulated: [...li.querySelectorAll('.simulated-values .token')].map((t) =>
          Number(t.getAttribute('data-value')),
        ),
      })),
    );
    const ids = [...score.score.provenance.recordIds.top, ...score.score.provenance.recordIds.random];
    const simulations = [...score.simulatedTop, ...score.simulatedRandom];
    expect(ids.length).toBeGreaterThan(0);
    expect(rows.map((r) => r.id)).toEqual(ids);
    const windows = new Map<string, number[]>();
    for (const side of ['top', 'random'])
      for (const e of data[side].edges) windows.set(`${side}:window:${e.node.window}`, e.node.values);
    for (const [i, row] of rows.entries()) {
      expect(row.simulated).toEqual(simulations[i].values);
      expect(row.truth).toEqual(windows.get(row.id));
      expect(row.truth.length).toBe(row.simulated.length);
    }
    await page.locator('.compared').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'simulated-vs-true.png') });
    await page.close();
  });
});
