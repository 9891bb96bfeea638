import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAE_ID, startWorkbench, type Workbench } from '../support/workbench.js';

// The steering playground: what it shows equals the gateway's steer answer for the same setup and seed,
// and its URL restores the setup (rendered on the server, so it works without JavaScript too).
let bench: Workbench;

beforeAll(async () => {
  bench = await startWorkbench();
});

afterAll(async () => {
  await bench?.stop();
});

const STEER = `query ($prompt: String!, $edits: [SteeringEdit!]!, $options: SteerOptions) {
  steer(prompt: $prompt, edits: $edits, options: $options) { seed steered { text } unsteered { text } } }`;

describe('steering playground in Chromium', () => {
  it('steers with the chosen units and shows both completions exactly as the gateway gives them', async () => {
    const prompt = 'Once upon a time';
    const edits = [
      { unit: `tiny/${SAE_ID}/17`, strength: 40, mode: 'ADD' },
      { unit: `tiny/${SAE_ID}/3`, strength: -12.5, mode: 'ADD' },
    ];
    const options = { maxTokens: 8, temperature: 1, topK: 0, seed: 7 };
    const { steer: want } = await bench.gql(STEER, { prompt, edits, options });
    expect(want.steered.text).not.toBe(want.unsteered.text);

    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/steer`);
    await page.fill('textarea[name=prompt]', prompt);
    await page.fill('input[name=unit] >> nth=0', edits[0].unit);
    await page.fill('input[name=strength] >> nth=0', String(edits[0].strength));
    await page.click('text=add unit');
    await page.fill('input[name=unit] >> nth=1', edits[1].unit);
    await page.fill('input[name=strength] >> nth=1', String(edits[1].strength));
    await page.fill('input[name=seed]', String(options.seed));
    await page.fill('input[name=maxTokens]', String(options.maxTokens));
    await page.fill('input[name=temperature]', String(options.temperature));
    await page.click('button[type=submit]');
    await page.locator('.completions').waitFor();
    await expect(page.locator('.completions .steered').textContent()).resolves.toBe(want.steered.text);
    await expect(page.locator('.completions .unsteered').textContent()).resolves.toBe(want.unsteered.text);
    await expect(page.locator('.completions').getAttribute('data-seed')).resolves.toBe('7');

    // the address bar now holds the setup: opening it elsewhere, without JavaScript, shows the same
    const shared = page.url();
    expect(new URL(shared).searchParams.getAll('unit')).toEqual(edits.map((e) => e.unit));
    await page.close();
    const context = await bench.browser.newContext({ javaScriptEnabled: false });
    const bare = await context.newPage();
    await bare.goto(shared);
    await expect(bare.locator('textarea[name=prompt]').inputValue()).resolves.toBe(prompt);
    await expect(
      bare.locator('input[name=unit]').evaluateAll((i) => i.map((x) => (x as HTMLInputElement).value)),
    ).resolves.toEqual(edits.map((e) => e.unit));
    await expect(
      bare
        .locator('input[name=strength]')
        .evaluateAll((i) => i.map((x) => Number((x as HTMLInputElement).value))),
    ).resolves.toEqual(edits.map((e) => e.strength));
    await expect(bare.locator('input[name=seed]').inputValue()).resolves.toBe('7');
    await expect(bare.locator('.completions .steered').textContent()).resolves.toBe(want.steered.text);
    await expect(bare.locator('.completions .unsteered').textContent()).resolves.toBe(want.unsteered.text);
    await context.close();
  });

  it('a blank seed is chosen by the gateway and written into the shared URL, which reproduces the result', async () => {
    const page = await bench.browser.newPage();
    await page.goto(`${bench.web.url}/steer?prompt=Hello&unit=tiny/${SAE_ID}/5&strength=20&maxTokens=6`);
    await page.click('button[type=submit]');
    await page.waitForURL(/seed=\d+/);
    const seed = Number(new URL(page.url()).searchParams.get('seed'));
    const { steer } = await bench.gql(STEER, {
      prompt: 'Hello',
      edits: [{ unit: `tiny/${SAE_ID}/5`, strength: 20 }],
      options: { maxTokens: 6, seed },
    });
    await expect(page.locator('.completions .steered').textContent()).resolves.toBe(steer.steered.text);
    await page.close();
  });

  it('shows the gateway’s error for an edit it cannot apply', async () => {
    const page = await bench.browser.newPage();
    await page.goto(`${bench.web.url}/steer?prompt=Hello&unit=tiny/${SAE_ID}/5&mode=CLAMP&maxTokens=4`);
    const alert = page.locator('.error[role=alert]');
    await expect(alert.getAttribute('data-code')).resolves.toBe('BAD_USER_INPUT');
    await expect(alert.textContent()).resolves.toMatch(/TopK.*CLAMP is not supported for it/);
    await page.close();
  });
});
