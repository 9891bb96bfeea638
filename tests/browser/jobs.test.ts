import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/process.js';
import {
  type Json,
  NEURON_HOOK,
  SAE_ID,
  SCREENSHOTS,
  startWorkbench,
  type Workbench,
} from '../support/workbench.js';

// The jobs page: a capture job started from the browser with an API key, its progress pushed over
// graphql-ws until done, and the final state equal to what the gateway reports for the job; then the
// server-rendered list of recent jobs, filtered from the URL, equal to what the gateway's `jobs` lists.
let bench: Workbench;

beforeAll(async () => {
  bench = await startWorkbench();
});

afterAll(async () => {
  await bench?.stop();
});

describe('jobs page in Chromium', () => {
  it('starts a capture job with an API key and watches its progress reach done', async () => {
    const created = await runCli(['apikey', 'create', '--name', 'browser-jobs'], bench.env);
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout).key as string;
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/jobs`);

    // without a key the gateway refuses, and the page says so
    await page.fill('.capture-form input[name=hooks]', NEURON_HOOK);
    await page.fill('.capture-form input[name=maxTokens]', '600');
    await page.click('.capture-form button[type=submit]');
    await expect(page.locator('.error[role=alert]').getAttribute('data-code')).resolves.toBe(
      'UNAUTHENTICATED',
    );

    await page.fill('input[name=apiKey]', key);
    await page.click('.capture-form button[type=submit]');
    await page.waitForURL(/\/jobs\?capture=/);
    const id = new URL(page.url()).searchParams.get('capture')!;
    const status = page.locator('.job-status');
    await page.locator('.job-status[data-status=done]').waitFor({ timeout: 60_000 });
    await expect(status.getAttribute('data-phase')).resolves.toBe('done');
    const { captureJob } = await bench.gql(
      'query ($id: ID!) { captureJob(id: $id) { status tokensDone totalTokens } }',
      {
        id,
      },
    );
    expect(captureJob.status).toBe('done');
    await expect(page.locator('.progress progress').getAttribute('value')).resolves.toBe(
      String(captureJob.tokensDone),
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'jobs.png') });
    // the result link opens the captured neurons
    await Promise.all([
      page.waitForURL(`**/units/tiny/${NEURON_HOOK}/0`),
      page.click('.job-results a >> nth=0'),
    ]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Neuron 0');

    // the key stays in this browser: reloading the page keeps it
    await page.goto(`${bench.web.url}/jobs?capture=${id}`);
    // the server renders the field empty; the page fills it from localStorage once hydrated
    await expect.poll(() => page.locator('input[name=apiKey]').inputValue(), { timeout: 15_000 }).toBe(key);
    await page.locator('.job-status[data-status=done]').waitFor();
    await page.close();
  });

  it('runs a scoring job to done with its running cost, and cancels another', async () => {
    const created = await runCli(['apikey', 'create', '--name', 'browser-scoring'], bench.env);
    const key = JSON.parse(created.stdout).key as string;
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/jobs`);
    await page.fill('input[name=apiKey]', key);
    await page.fill('.scoring-form input[name=units]', `tiny/${NEURON_HOOK}/0-3`);
    await page.click('.scoring-form button[type=submit]');
    await page.waitForURL(/\/jobs\?scoring=/);
    const id = new URL(page.url()).searchParams.get('scoring')!;
    await page.locator('.job-status[data-status=done]').waitFor({ timeout: 60_000 });
    const { scoringJob } = await bench.gql(
      'query ($id: ID!) { scoringJob(id: $id) { status unitsDone unitsTotal llmCalls tokensSpent costUsd } }',
      { id },
    );
    expect(scoringJob).toMatchObject({ status: 'done', unitsDone: 4, unitsTotal: 4 });
    await expect(page.locator('.progress progress').getAttribute('value')).resolves.toBe('4');
    const cost = page.locator('.running-cost');
    await expect(cost.getAttribute('data-calls')).resolves.toBe(String(scoringJob.llmCalls));
    await expect(cost.getAttribute('data-tokens')).resolves.toBe(String(scoringJob.tokensSpent));
    await expect(cost.getAttribute('data-cost-usd')).resolves.toBe(String(scoringJob.costUsd));
    await expect(page.locator('button.cancel').count()).resolves.toBe(0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'scoring-job.png') });
    // its results: the hook's neurons by score, the scored ones first
    await Promise.all([
      page.waitForURL(`**/hooks/tiny/${NEURON_HOOK}?order=SCORE`),
      page.click('.job-results a'),
    ]);
    const scored = await page
      .locator('.unit-list tr[data-unit]')
      .evaluateAll((rows) => rows.slice(0, 4).map((tr) => tr.getAttribute('data-score')));
    expect(scored.every((score) => score !== '')).toBe(true);
    await page.goto(`${bench.web.url}/jobs`);

    // a long job, one unit at a time, cancelled from the page
    await page.fill('.scoring-form input[name=units]', `tiny/${NEURON_HOOK}/0-255;tiny/${SAE_ID}/0-95`);
    await page.fill('.scoring-form input[name=concurrency]', '1');
    await page.click('.scoring-form button[type=submit]');
    await page.waitForURL((url) => ![null, id].includes(url.searchParams.get('scoring')));
    const long = new URL(page.url()).searchParams.get('scoring')!;
    await page.locator('button.cancel').click();
    await page.locator('.job-status[data-status=cancelled]').waitFor({ timeout: 60_000 });
    const cancelled = await bench.gql('query ($id: ID!) { scoringJob(id: $id) { status unitsDone } }', {
      id: long,
    });
    expect(cancelled.scoringJob.status).toBe('cancelled');
    expect(cancelled.scoringJob.unitsDone).toBeLessThan(256 + 96);
    await page.close();
  });

  it('lists the jobs started above, newest first, filtered by kind and status from the URL', async () => {
    const LIST = `query ($kind: JobKind, $status: String) {
      jobs(kind: $kind, status: $status, first: 25) {
        totalCount
        edges { node { id kind status progress } }
      }
    }`;
    const rows = (page: Page) =>
      page.locator('.job-list tbody tr').evaluateAll((trs) =>
        trs.map((tr) => ({
          id: tr.getAttribute('data-job-id'),
          kind: tr.getAttribute('data-kind'),
          status: tr.getAttribute('data-status'),
          progress: Number(tr.querySelector('.job-progress')?.getAttribute('data-progress')),
        })),
      );
    const page = await bench.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${bench.web.url}/jobs`);
    const { jobs } = await bench.gql(LIST);
    // the workbench's own capture, and the tests above: a capture job and scoring jobs
    expect(jobs.totalCount).toBeGreaterThanOrEqual(3);
    const shown = await rows(page);
    expect(shown).toEqual(jobs.edges.map((e: Json) => e.node));
    expect(new Set(shown.map((r) => r.kind))).toEqual(new Set(['CAPTURE', 'SCORING']));
    await expect(page.locator('.job-list [data-total]').getAttribute('data-total')).resolves.toBe(
      String(jobs.totalCount),
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'jobs-list.png') });

    // the filter form puts kind and status in the URL; the server renders only those jobs
    await page.selectOption('.job-filter select[name=kind]', 'scoring');
    await page.selectOption('.job-filter select[name=status]', 'done');
    await Promise.all([page.waitForURL(/kind=scoring&status=done/), page.click('.job-filter button')]);
    const scoringDone = (await bench.gql(LIST, { kind: 'SCORING', status: 'done' })).jobs;
    expect(scoringDone.totalCount).toBeGreaterThanOrEqual(1);
    const filtered = await rows(page);
    expect(filtered).toEqual(scoringDone.edges.map((e: Json) => e.node));
    expect(filtered.every((r) => r.kind === 'SCORING' && r.status === 'done')).toBe(true);
    expect(filtered.length).toBeLessThan(shown.length);

    // a done capture job links to the neurons it recorded
    await page.goto(`${bench.web.url}/jobs?kind=capture&status=done`);
    await Promise.all([
      page.waitForURL(`**/hooks/tiny/${NEURON_HOOK}`),
      page.click('.job-list tbody tr >> nth=0 >> .job-produced a'),
    ]);

    // a kind or status the API does not have is said so on the page
    await page.goto(`${bench.web.url}/jobs?kind=everything`);
    await expect(page.locator('.error[role=alert]').getAttribute('data-code')).resolves.toBe(
      'BAD_USER_INPUT',
    );
    await page.goto(`${bench.web.url}/jobs?status=finished`);
    await expect(page.locator('.error[role=alert]').textContent()).resolves.toMatch(
      /unknown job status "finished"/,
    );
    await page.close();
  });

  it('shows the error of a job that cannot start', async () => {
    const page = await bench.browser.newPage();
    await page.goto(`${bench.web.url}/jobs`);
    await page.fill('input[name=apiKey]', 'not-a-key');
    await page.fill('.capture-form input[name=hooks]', NEURON_HOOK);
    await page.click('.capture-form button[type=submit]');
    await expect(page.locator('.error[role=alert]').getAttribute('data-code')).resolves.toBe(
      'UNAUTHENTICATED',
    );
    await page.close();
  });
});
