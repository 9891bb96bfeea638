import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { type RunningProcess, startProcess } from '../support/process.js';
import { serveEnv } from '../support/serve.js';
import { type Json, SCREENSHOTS } from '../support/workbench.js';

// The first hour of a newcomer: `loupe serve` offline on an empty data directory (as `npm start` on a
// machine without the hub) prepares the demo workspace, and every page it leads to works. Home page →
// a neuron with records; → the demo SAE's features → a feature; /shop out of the box with the query's
// features and "why"; the feature's "steer with it" → a steering run. Each step is asserted in the page,
// against the gateway's answer, and each page is photographed for the README.
const MODEL = 'loupe-tiny';
const NEURON_HOOK = 'blocks.1.mlp.hook_post';
const SAE_HOOK = 'blocks.1.hook_resid_pre';
const QUERY = 'waterproof hiking boots';

let dataDir: string;
let env: Record<string, string>;
let serve: RunningProcess | undefined;
let browser: Browser | undefined;
let web: string;
let saeId: string;

async function gql(query: string, variables: Record<string, unknown> = {}): Promise<Json> {
  const response = await fetch(`http://127.0.0.1:${env.LOUPE_GATEWAY_PORT}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Json; errors?: unknown[] };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** Polls workspace.json until the demo is done (a failed step fails the test with its error). */
async function waitForDemo(process: RunningProcess): Promise<Json> {
  for (let i = 0; i < 2400; i++) {
    if (process.child.exitCode !== null) throw new Error(`loupe serve exited:\n${process.stderr()}`);
    const ws = await fs
      .readFile(path.join(dataDir, 'workspace.json'), 'utf8')
      .then(JSON.parse)
      .catch(() => null);
    const failed = ws?.steps.find((s: Json) => s.status === 'failed');
    if (failed) throw new Error(`demo step ${failed.kind} failed: ${failed.error}\n${process.stderr()}`);
    if (ws?.status === 'done') return ws;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the demo workspace did not finish:\n${process.stderr()}`);
}

async function waitForWeb(process: RunningProcess): Promise<void> {
  for (let i = 0; ; i++) {
    if (
      await fetch(`${web}/_not-found`).then(
        () => true,
        () => false,
      )
    )
      return;
    if (i > 240 || process.child.exitCode !== null)
      throw new Error(`web did not start:\n${process.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-first-hour-'));
  env = await serveEnv(dataDir, { LOUPE_EMBEDDINGS_BASE_URL: '' });
  const webPort = env.LOUPE_WEB_PORT;
  web = `http://127.0.0.1:${webPort}`;
  serve = startProcess('services/cli/dist/main.js', env, ['serve']);
  const workspace = await waitForDemo(serve);
  expect(workspace).toMatchObject({ model: MODEL, offline: true });
  saeId = workspace.saeId;
  await waitForWeb(serve);
  browser = await launchChromium();
  await fs.mkdir(SCREENSHOTS, { recursive: true });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await serve?.stop('SIGTERM'); // the web app's process group goes with it
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function newPage(): Promise<Page> {
  if (!browser) throw new Error('no browser');
  return browser.newPage({ viewport: { width: 1280, height: 900 } });
}

describe('the first hour on a fresh offline `loupe serve`', () => {
  it('home page: the finished demo, and a neuron picker offering only hooks with records', async () => {
    const { hookUnits } = await gql(
      `{ hookUnits(model: "${MODEL}", hook: "${NEURON_HOOK}", orderBy: MAX_ACTIVATION, first: 1) { totalCount edges { node { index } } } }`,
    );
    const strongest = hookUnits.edges[0].node.index;
    const page = await newPage();
    await page.goto(web);
    await expect(page.locator('aside.workspace').getAttribute('data-status')).resolves.toBe('done');
    await expect(
      page.locator('aside.workspace li[data-kind=shop]').getAttribute('data-status'),
    ).resolves.toBe('done');
    // the demo captured the middle layer only: that is the one hook offered, at its strongest neuron
    await expect(
      page
        .locator('select[name=hook] option')
        .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value)),
    ).resolves.toEqual([NEURON_HOOK]);
    await expect(page.locator('input[name=index]').inputValue()).resolves.toBe(String(strongest));
    // and the other layer's neurons are named with the command that captures them, for the served model
    await expect(page.locator('.capture-hint code').textContent()).resolves.toBe(
      `npx loupe capture --model ${MODEL} --hooks blocks.0.mlp.hook_post --max-tokens 32768`,
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'home.png') });

    await Promise.all([
      page.waitForURL(`**/units/${MODEL}/${NEURON_HOOK}/${strongest}`),
      page.click('form.lookup button[type=submit]'),
    ]);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Neuron ${strongest}`);
    await expect(page.locator('.error').count()).resolves.toBe(0);
    await expect(page.locator('.records .window').count()).resolves.toBeGreaterThan(0);
    // the histogram has its axes: activation ticks along x, log counts along y
    await expect(page.locator('.histogram .x-axis [data-tick]').count()).resolves.toBeGreaterThan(1);
    await expect(page.locator('.histogram .y-axis [data-tick]').count()).resolves.toBeGreaterThan(1);
    await expect(page.locator('.histogram .axis-label').allTextContents()).resolves.toEqual([
      'count (log)',
      'activation',
    ]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'unit-page.png') });

    // the model page lists the recorded hook only, and says how to capture the other
    await page.goto(`${web}/models/${MODEL}`);
    await expect(page.locator('ul.hooks li').allTextContents()).resolves.toEqual([
      `${NEURON_HOOK} · ${hookUnits.totalCount} neurons with records`,
    ]);
    await expect(page.locator('.capture-hint').textContent()).resolves.toContain(
      `npx loupe capture --model ${MODEL} --hooks blocks.0.mlp.hook_post`,
    );
    await page.close();
  });

  it("home page → the demo SAE's features → a feature with an explanation and a steer link", async () => {
    const page = await newPage();
    await page.goto(web);
    await Promise.all([
      page.waitForURL(`**/saes/${saeId}`),
      page.click('aside.workspace >> text=Browse its SAE features'),
    ]);
    // best-scored first: the demo explained and scored the first features
    await Promise.all([page.waitForURL('**?order=SCORE'), page.click('nav.tabs >> text=score')]);
    const first = page.locator('.unit-list tr[data-unit] >> nth=0');
    const id = await first.getAttribute('data-unit');
    expect(id).toMatch(new RegExp(`^${MODEL}/${saeId}/\\d+$`));
    await Promise.all([page.waitForURL(`**/units/${id}`), first.locator('a >> nth=0').click()]);
    await expect(page.locator('h1').textContent()).resolves.toMatch(/^Feature \d+$/);
    await expect(page.locator('.explanations-section').textContent()).resolves.not.toContain(
      'No explanations yet',
    );
    await expect(page.locator('.records .window').count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('a.steer-link').getAttribute('href')).resolves.toBe(
      `/steer?unit=${encodeURIComponent(id ?? '')}&strength=10`,
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'feature-page.png') });
    await page.close();
  });

  it("shop out of the box: the catalog is indexed at the SAE's hook, with the query's features and why", async () => {
    const { shopSearch: want } = await gql(
      `query ($q: String!) { shopSearch(query: $q) { saeChoice sae { id } collection { hook }
        queryFeatures { feature { id } } results { id why { feature { index } } } } }`,
      { q: QUERY },
    );
    expect(want).toMatchObject({
      saeChoice: 'WORKSPACE',
      sae: { id: saeId },
      collection: { hook: SAE_HOOK },
    });
    expect(want.queryFeatures.length).toBeGreaterThan(0);

    const page = await newPage();
    await page.goto(`${web}/shop`);
    await expect(page.locator('.error').count()).resolves.toBe(0);
    await expect(page.locator('.no-collections').count()).resolves.toBe(0);
    await Promise.all([page.waitForURL('**/shop?q=*'), page.click(`.examples >> text=${QUERY}`)]);
    await page.locator('[data-column=results]').waitFor();
    await expect(
      page
        .locator('[data-column=results] li[data-id]')
        .evaluateAll((c) => c.map((x) => x.getAttribute('data-id'))),
    ).resolves.toEqual(want.results.map((r: Json) => r.id));
    await expect(
      page.locator('.query-features .feature').evaluateAll((r) => r.map((x) => x.getAttribute('data-unit'))),
    ).resolves.toEqual(want.queryFeatures.map((f: Json) => f.feature.id));
    await expect(page.locator('.query-features').textContent()).resolves.toContain(
      "the demo workspace's SAE",
    );
    // why: a result that shares features with the query lists them as the gateway does
    const shared = want.results.findIndex((r: Json) => r.why.length > 0);
    expect(shared).toBeGreaterThanOrEqual(0);
    const card = page.locator(`[data-column=results] li[data-id] >> nth=${shared}`);
    await card.locator('summary').click();
    await expect(
      card
        .locator('.why li')
        .evaluateAll((items) => items.map((i) => Number(i.getAttribute('data-feature')))),
    ).resolves.toEqual(want.results[shared].why.map((w: Json) => w.feature.index));
    // steering the query's first feature brings the steered results beside the unsteered ones
    await page.locator('.query-features .feature >> nth=0').locator('input[type=range]').fill('60');
    await page.locator('[data-column=steered]').waitFor();
    await expect(page.locator('[data-column=unsteered] li[data-id]').count()).resolves.toBe(
      want.results.length,
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'shop.png') });
    await page.close();
  });

  it("a feature's “steer with it” starts a steering run, and the picker finds features by explanation", async () => {
    const { saeFeatures } = await gql(
      `{ saeFeatures(saeId: "${saeId}", orderBy: SCORE, first: 1) { edges { node { id explanations(first: 1) { edges { node { text } } } } } } }`,
    );
    const feature = saeFeatures.edges[0].node;
    const page = await newPage();
    await page.goto(`${web}/units/${feature.id}`);
    await Promise.all([page.waitForURL('**/steer?**'), page.click('a.steer-link')]);
    // the playground arrives with the feature and a prompt: one click runs it
    await expect(page.locator('input[name=unit] >> nth=0').inputValue()).resolves.toBe(feature.id);
    const prompt = await page.locator('textarea[name=prompt]').inputValue();
    expect(prompt).not.toBe('');
    await page.click('.steer-form button[type=submit]');
    await page.locator('.completions').waitFor();
    const seed = Number(await page.locator('.completions').getAttribute('data-seed'));
    const { steer } = await gql(
      `query ($prompt: String!, $unit: ID!, $seed: Int) {
        steer(prompt: $prompt, edits: [{ unit: $unit, strength: 10, mode: ADD }], options: { seed: $seed, maxTokens: 32, temperature: 1, topK: 0 }) {
          steered { text } unsteered { text } } }`,
      { prompt, unit: feature.id, seed },
    );
    await expect(page.locator('.completions .steered').textContent()).resolves.toBe(steer.steered.text);
    await expect(page.locator('.completions .unsteered').textContent()).resolves.toBe(steer.unsteered.text);

    // the picker starts at the demo SAE; searching its explanations finds the feature by a word of one
    await expect(page.locator('.feature-picker select').inputValue()).resolves.toBe(saeId);
    const text: string = feature.explanations.edges[0].node.text;
    // the longest token the baseline explanation quotes (`the tokens " market" and "dog", …`), when it is
    // long enough not to be a stop word of the full-text search; else its own word "tokens"
    const quoted = [...text.matchAll(/"\s*([A-Za-z]+)"/g)]
      .map((m) => m[1])
      .sort((a, b) => b.length - a.length);
    const word = quoted[0] && quoted[0].length >= 6 ? quoted[0] : 'tokens';
    await page.fill('.feature-picker input[type=search]', word);
    await page.press('.feature-picker input[type=search]', 'Enter');
    await expect.poll(() => page.locator('.feature-picker .picks-caption').textContent()).toContain(word);
    const found = await page
      .locator('.feature-picker .picks li')
      .evaluateAll((items) => items.map((i) => i.getAttribute('data-unit')));
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((u) => u?.startsWith(`${MODEL}/${saeId}/`))).toBe(true);
    const other = found.find((u) => u !== feature.id);
    if (other) {
      await page.click(`.feature-picker li[data-unit="${other}"] button`);
      await expect(
        page.locator('input[name=unit]').evaluateAll((i) => i.map((x) => (x as HTMLInputElement).value)),
      ).resolves.toEqual([feature.id, other]);
    }
    await page.screenshot({ path: path.join(SCREENSHOTS, 'steering.png') });
    await page.close();
  });
});
