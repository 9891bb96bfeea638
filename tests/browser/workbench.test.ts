import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type RunningWeb, startWeb } from '../support/browser.js';
import type { TestDatabase } from '../support/database.js';
import { freePort, type RunningProcess, runCli, startProcess } from '../support/process.js';
import { serveTiny } from '../support/served-tiny.js';

// The whole stack as real processes (the suite's database, capture service, GraphQL gateway, `next start`)
// driven by Debian's Chromium. What each page shows is compared with what the gateway answers. (The
// README's home and neuron page screenshots come from the demo workspace: first-hour.test.ts.)
const HOOK = 'blocks.1.mlp.hook_post';
const NEURON = 3;

let db: TestDatabase;
let capture: RunningProcess;
let explainer: RunningProcess;
let gateway: RunningProcess;
let web: RunningWeb;
let browser: Browser;
let gatewayUrl: string;

// biome-ignore lint/suspicious/noExplicitAny: answers are compared field by field with the page
type Json = any;

async function gql(query: string, variables: Record<string, unknown> = {}): Promise<Json> {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  expect(body.errors).toBeUndefined();
  return body.data;
}

beforeAll(async () => {
  const served = await serveTiny('loupe-browser-');
  const { dataDir, servedModel, dbEnv } = served;
  db = served.db;
  const gatewayPort = await freePort();
  const env = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...dbEnv,
    // unit pages ask the explainer for explanations; its baseline needs no LLM server
    LOUPE_EXPLAINER_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_LLM_BASE_URL: '',
    LOUPE_EMBEDDINGS_BASE_URL: '',
  };
  const captured = await runCli(
    ['capture', '--model', servedModel, '--hooks', HOOK, '--max-tokens', '3000'],
    env,
  );
  expect(captured.code, captured.stderr).toBe(0);
  capture = startProcess('services/capture/dist/main.js', env);
  explainer = startProcess('services/explainer/dist/main.js', env);
  gateway = startProcess('services/gateway/dist/bin.js', env);
  gatewayUrl = `http://127.0.0.1:${gatewayPort}/graphql`;
  for (let i = 0; ; i++) {
    const up = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{ __typename }"}',
    }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (i > 240 || gateway.child.exitCode !== null)
      throw new Error(`gateway did not start:\n${gateway.stderr()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  web = await startWeb(await freePort(), env);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  await gateway?.stop();
  await explainer?.stop();
  await capture?.stop();
  await db?.stop();
});

const UNIT = `query ($id: ID!) {
  unit(id: $id) {
    stats { maxActivation tokens }
    top(first: 20) { totalCount edges { node { window values tokens { text } } } }
    random(first: 20) { edges { node { window values } } }
  }
}`;

describe('web workbench in Chromium', () => {
  it('home page lists the served model and opens a neuron from the form', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(web.url);
    await expect(page.locator('h2').first().textContent()).resolves.toBe('tiny');
    const model = await gql('{ model { nLayer dModel } }');
    await expect(page.locator('.model .muted').first().textContent()).resolves.toContain(
      `${model.model.nLayer} layers · d_model ${model.model.dModel}`,
    );
    // only hooks with records are offered; the others come with the command that captures them
    await expect(
      page
        .locator('select[name=hook] option')
        .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value)),
    ).resolves.toEqual([HOOK]);
    await expect(page.locator('.capture-hint code').textContent()).resolves.toContain(
      'npx loupe capture --model tiny --hooks blocks.0.mlp.hook_post',
    );
    await page.selectOption('select[name=hook]', HOOK);
    await page.fill('input[name=index]', String(NEURON));
    await Promise.all([
      page.waitForURL(`**/units/tiny/${HOOK}/${NEURON}`),
      page.click('button[type=submit]'),
    ]);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Neuron ${NEURON}`);
    await page.close();
  });

  it("unit page shows the neuron's top and random records as the gateway gives them", async () => {
    const id = `tiny/${HOOK}/${NEURON}`;
    const { unit } = await gql(UNIT, { id });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${web.url}/units/${id}`);
    const windows = page.locator('.records .window');
    await expect(windows.count()).resolves.toBe(unit.top.edges.length);
    const shownWindows = await windows.evaluateAll((items) =>
      items.map((li) => Number(li.getAttribute('data-window'))),
    );
    expect(shownWindows).toEqual(unit.top.edges.map((e: Json) => e.node.window));
    // every token of the first window, with its value, in order
    const first = unit.top.edges[0].node;
    const tokens = windows.first().locator('.token');
    const values = await tokens.evaluateAll((spans) =>
      spans.map((s) => Number(s.getAttribute('data-value'))),
    );
    expect(values).toEqual(first.values);
    await expect(tokens.count()).resolves.toBe(first.tokens.length);
    // hovering shows the value (the title carries it, rounded for display)
    const peak = first.values.indexOf(Math.max(...first.values));
    await expect(tokens.nth(peak).getAttribute('title')).resolves.toMatch(/: -?[\d.e-]+$/);
    await expect(page.locator('.explanations-section').textContent()).resolves.toContain(
      'No explanations yet',
    );

    await Promise.all([page.waitForURL('**?tab=random'), page.click('nav.tabs >> text=random')]);
    const randomWindows = await page
      .locator('.records .window')
      .evaluateAll((items) => items.map((li) => Number(li.getAttribute('data-window'))));
    expect(randomWindows).toEqual(unit.random.edges.map((e: Json) => e.node.window));
    await page.close();
  });

  it("unit page shows the neuron's logit tokens and nearest neurons as the gateway gives them", async () => {
    const id = `tiny/${HOOK}/${NEURON}`;
    const { unit } = await gql(
      `query ($id: ID!) { unit(id: $id) { positiveLogits { token { id } value } negativeLogits { token { id } value }
        nearest(first: 10) { edges { cosine node { id } } }
        ... on Neuron { across: nearest(first: 10, acrossLayers: true) { edges { cosine node { id } } }
          positiveInputTokens { token { id } value }
          connections { upstreamPositive { weight neuron { id } } downstreamNegative { weight neuron { id } } } } } }`,
      { id },
    );
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${web.url}/units/${id}`);
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
    const links = (selector: string) =>
      page
        .locator(`${selector} a`)
        .evaluateAll((as) => as.map((a) => [a.getAttribute('href'), Number(a.getAttribute('data-cosine'))]));
    const expected = (list: Json) => list.edges.map((e: Json) => [`/units/${e.node.id}`, e.cosine]);
    expect(await links('.nearest')).toEqual(expected(unit.nearest));
    expect(await links('.nearest-across-layers')).toEqual(expected(unit.across));
    expect(unit.nearest.edges).toHaveLength(10);
    // OpenAI's weight-based input tokens and connections
    expect(await rows('.positive-input-tokens')).toEqual(
      unit.positiveInputTokens.map((t: Json) => [t.token.id, t.value]),
    );
    const connected = (selector: string) =>
      page
        .locator(`${selector} a`)
        .evaluateAll((as) => as.map((a) => [a.getAttribute('href'), Number(a.getAttribute('data-weight'))]));
    for (const [selector, list] of [
      ['.upstream-positive', unit.connections.upstreamPositive],
      ['.downstream-negative', unit.connections.downstreamNegative],
    ]) {
      expect(await connected(selector)).toEqual(list.map((c: Json) => [`/units/${c.neuron.id}`, c.weight]));
    }
    // a nearest neuron's link opens that neuron
    const [href] = (await links('.nearest'))[0] as [string, number];
    await Promise.all([page.waitForURL(`**${href}`), page.click('.nearest a >> nth=0')]);
    await expect(page.locator('h1').textContent()).resolves.toMatch(/^Neuron \d+$/);
    await page.close();
  });

  it('renders the records on the server: the page is complete with JavaScript off', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${web.url}/units/tiny/${HOOK}/${NEURON}?tab=random`);
    await expect(page.locator('.records .window').count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('nav.tabs a[aria-current=page]').textContent()).resolves.toBe('random');
    await context.close();
  });

  it('says what is wrong for a unit that does not exist, instead of failing', async () => {
    const page = await browser.newPage();
    await page.goto(`${web.url}/units/tiny/${HOOK}/999999`);
    const alert = page.locator('.error[role=alert]');
    await expect(alert.getAttribute('data-code')).resolves.toBe('NOT_FOUND');
    await expect(alert.textContent()).resolves.toMatch(/999999/);
    await page.goto(`${web.url}/units/tiny/blocks.99.mlp.hook_post/0`);
    await expect(page.locator('.error[role=alert]').textContent()).resolves.toMatch(/blocks\.99/);
    await page.close();
  });
});
