import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, startWorkbench, type Workbench } from '../support/workbench.js';

// The research pages (logit lens table, patching heat map, DLA bars): rendered on the server from the
// URL, what they show equals the gateway's answer for the same setup.
let bench: Workbench;

beforeAll(async () => {
  bench = await startWorkbench();
});

afterAll(async () => {
  await bench?.stop();
});

describe('research pages in Chromium', () => {
  it('logit lens: one row per layer, each cell the gateway’s top token and the followed token’s rank', async () => {
    const text = 'The capital of France is';
    const { logitLens: want } = await bench.gql(
      `query ($text: String!) { logitLens(text: $text, token: " Paris", top: 3) { tokens { id } cells { top { id } rank } } }`,
      { text },
    );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 700 } });
    await page.goto(`${bench.web.url}/lens?${new URLSearchParams({ text, token: ' Paris' })}`);
    const rows = page.locator('table.lens-table tbody tr');
    await expect(rows.count()).resolves.toBe(want.cells.length);
    const cells = await rows.evaluateAll((trs) =>
      trs.map((tr) =>
        [...tr.querySelectorAll('td')].map((td) => [Number(td.dataset.top), Number(td.dataset.rank)]),
      ),
    );
    expect(cells).toEqual(
      want.cells.map((row: { top: { id: number }[]; rank: number }[]) =>
        row.map((c) => [c.top[0].id, c.rank]),
      ),
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'logit-lens.png') });
    await page.close();
  });

  it('attention: one head or all as small multiples, the gateway’s pattern; hovering a token marks its row and column', async () => {
    const text = 'Hello world, my name is';
    const { activations } = await bench.gql(
      `query ($text: String!) { activations(text: $text, hooks: ["blocks.1.attn.hook_pattern"]) { hooks { shape tensor } } }`,
      { text },
    );
    const [{ shape, tensor }] = activations.hooks;
    const [nHead, n] = shape;
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${bench.web.url}/attention?${new URLSearchParams({ text, layer: '1', head: 'all' })}`);
    await expect(page.locator('table.attention-grid').count()).resolves.toBe(nHead);
    for (let h = 0; h < nHead; h++) {
      const cells = await page
        .locator(`table.attention-grid[data-head="${h}"] td`)
        .evaluateAll((tds) => tds.map((td) => Number((td as HTMLElement).dataset.p)));
      expect(cells).toEqual(tensor.slice(h * n * n, (h + 1) * n * n));
    }
    await page.locator('table.attention-grid[data-head="0"] tbody th >> nth=2').hover();
    const marked = await page
      .locator('table.attention-grid[data-head="0"] td')
      .evaluateAll((tds) => tds.filter((td) => (td as HTMLElement).style.outline !== '').length);
    expect(marked).toBe(2 * n - 1); // token 2's row and column
    await page.screenshot({ path: path.join(SCREENSHOTS, 'attention.png') });
    await page.goto(`${bench.web.url}/attention?${new URLSearchParams({ text, layer: '1', head: '3' })}`);
    await expect(page.locator('table.attention-grid').count()).resolves.toBe(1);
    await page.goto(`${bench.web.url}/attention?${new URLSearchParams({ text, layer: '9' })}`);
    await expect(page.locator('.error[role=alert]').textContent()).resolves.toMatch(/layers 0-1/);
    await page.close();
  });

  it('activation patching: the heat map holds the gateway’s scores; DLA bars its contributions', async () => {
    const setup = {
      clean: 'Mary met John, John thanked',
      corrupted: 'Mary met John, Mary thanked',
      answer: ' Mary',
      wrong: ' John',
      hook: 'z',
    };
    const { activationPatching: want } = await bench.gql(
      `query ($clean: String!, $corrupted: String!, $answer: String!, $wrong: String!) {
         activationPatching(clean: $clean, corrupted: $corrupted, answer: $answer, wrong: $wrong, hook: z) { scores } }`,
      setup,
    );
    // no JavaScript: the server renders the map from the URL alone
    const context = await bench.browser.newContext({
      javaScriptEnabled: false,
      viewport: { width: 1280, height: 700 },
    });
    const page = await context.newPage();
    await page.goto(`${bench.web.url}/patching?${new URLSearchParams(setup)}`);
    const scores = await page
      .locator('table.patching-map tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.dataset.score))),
      );
    expect(scores).toEqual(want.scores);
    // each cell names its patch, to rerun it with `loupe activations --patch` or activations(patches:)
    const patch = await page
      .locator('table.patching-map tbody tr >> nth=1')
      .locator('td >> nth=2')
      .getAttribute('data-patch');
    expect(JSON.parse(patch!)).toEqual({ hook: 'blocks.1.attn.hook_z', mode: 'replace', head: 2 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'patching.png') });

    const text = 'When Mary and John went out, John gave it to';
    const { directLogitAttribution: dla } = await bench.gql(
      `query ($text: String!) { directLogitAttribution(text: $text, token: " Mary", wrong: " John") { layers { heads mlp } } }`,
      { text },
    );
    await page.goto(`${bench.web.url}/dla?${new URLSearchParams({ text, token: ' Mary', wrong: ' John' })}`);
    const bars = await page
      .locator('ul.dla-bars li')
      .evaluateAll((lis) =>
        lis.map((li) => [li.getAttribute('data-label'), Number(li.getAttribute('data-value'))]),
      );
    const expected = dla.layers.flatMap((l: { heads: number[]; mlp: number }, layer: number) => [
      ...l.heads.map((v, h) => [`L${layer}H${h}`, v]),
      [`L${layer} MLP`, l.mlp],
    ]);
    expect(bars).toEqual(expected);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dla.png') });

    // a bad setup shows the gateway's reason
    await page.goto(`${bench.web.url}/patching?${new URLSearchParams({ ...setup, corrupted: 'Mary met' })}`);
    await expect(page.locator('.error[role=alert]').textContent()).resolves.toMatch(/same token length/);
    await context.close();
  });
});
