import { parseUnitId, UserInputError } from '@loupe/common';
import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLlmServer } from '../../../../tests/support/llm-server.js';
import { UNPRICED } from '../llm/cost.js';
import type { UnitRecords } from '../records/records.js';
import { selectModels } from '../select-models.js';
import { searchExplanations } from '../store/explanations.js';
import { EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA } from '../store/migrations.js';
import { syntheticUnit } from '../synthetic/units.js';
import { runJob } from './job-runner.js';
import {
  cancelJob,
  claimUnit,
  completeUnit,
  createJob,
  getJob,
  type JobSpec,
  jobUnits,
} from './job-store.js';

// Batch scoring jobs on the embedded Postgres: durable per-unit state, resume, retries, cancel, budget.
const db = withTestDatabase(
  { beforeAll, afterAll },
  { schema: EXPLAINER_SCHEMA, migrations: EXPLAINER_MIGRATIONS_DIR },
);

/** Even neurons fire on " river", odd ones are noise: records as the capture service would give them. */
const syntheticSource = (failures: Record<string, number> = {}) => {
  const calls: Record<string, number> = {};
  return {
    calls,
    async records(unit: string): Promise<UnitRecords> {
      calls[unit] = (calls[unit] ?? 0) + 1;
      if (calls[unit] <= (failures[unit] ?? 0)) throw new Error(`capture unavailable for ${unit}`);
      const { index } = parseUnitId(unit);
      return syntheticUnit({ seed: index, firesOn: index % 2 === 0 ? ' river' : undefined, records: 10 });
    },
  };
};
/** gpt-4o's list prices: US dollars per million tokens. */
const GPT_4O_PRICES = { promptUsdPerMillion: 2.5, completionUsdPerMillion: 10 };
const baseline = () => selectModels(undefined, 'baseline');
const spec = (units: string[], extra: Partial<JobSpec> = {}): JobSpec => ({
  units,
  method: 'simulation',
  llm: { baseUrl: null, model: null, simulator: 'baseline' },
  budgetTokens: 0,
  concurrency: 2,
  seed: 1,
  maxAttempts: 3,
  prices: UNPRICED,
  ...extra,
});
const units = (model: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${model}/blocks.0.mlp.hook_post/${i}`);
const explanationsOf = async (unit: string) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM explanations WHERE unit = ${unit}`)[0].n;

describe('scoring jobs', () => {
  it("scores every unit once, taking over a crashed worker's claim", async () => {
    const list = units('a', 6);
    const id = await createJob(db.sql, spec(list));
    // A worker that claimed unit 0 and died: its lease has already run out.
    const dead = await claimUnit(db.sql, id, 0);
    expect(dead?.unit).toBe(list[0]);
    const source = syntheticSource();
    const job = await runJob({ sql: db.sql, records: source, models: baseline }, id);
    expect(job).toMatchObject({ status: 'done', unitsDone: 6, unitsFailed: 0, unitsTotal: 6 });
    for (const unit of list) expect(await explanationsOf(unit)).toBe(1);
    const rows = await jobUnits(db.sql, id);
    expect(rows[0].attempts).toBe(2);
    expect(rows.every((r) => r.status === 'done' && r.explanationId)).toBe(true);
    // the dead worker comes back: its claim is stale and stores nothing
    const late = await completeUnit(db.sql, dead as NonNullable<typeof dead>, {
      unit: list[0],
      explanation: 'stale',
      method: 'simulation',
      score: 0,
      topOnly: null,
      randomOnly: null,
      ci: null,
      reason: null,
      explainerModel: null,
      simulatorModel: 'x',
      provenance: {},
      usage: { calls: 0, promptTokens: 0, completionTokens: 0, retries: 0 },
    });
    expect(late).toBe(false);
    expect(await explanationsOf(list[0])).toBe(1);
    // scores: river units high, noise units near 0
    const scores = await db.sql<{ unit: string; score: number; simulator_model: string }[]>`
      SELECT unit, score, simulator_model FROM explanations WHERE unit LIKE 'a/%' ORDER BY unit`;
    for (const row of scores) {
      expect(row.simulator_model).toBe('baseline-statistical');
      if (parseUnitId(row.unit).index % 2 === 0) expect(row.score).toBeGreaterThan(0.9);
      else expect(Math.abs(row.score ?? 0)).toBeLessThan(0.3);
    }
  });

  it('retries failed units up to max_attempts, then marks them failed', async () => {
    const list = units('b', 3);
    const id = await createJob(db.sql, spec(list, { concurrency: 1 }));
    const source = syntheticSource({ [list[1]]: 2, [list[2]]: 99 });
    const job = await runJob({ sql: db.sql, records: source, models: baseline }, id);
    expect(job).toMatchObject({ status: 'done', unitsDone: 2, unitsFailed: 1 });
    const rows = await jobUnits(db.sql, id);
    expect(rows.map((r) => [r.status, r.attempts])).toEqual([
      ['done', 1],
      ['done', 3],
      ['failed', 3],
    ]);
    expect(rows[2].error).toMatch(/capture unavailable/);
  });

  it('a cancelled job scores nothing more', async () => {
    const id = await createJob(db.sql, spec(units('c', 3)));
    expect((await cancelJob(db.sql, id)).status).toBe('cancelled');
    const source = syntheticSource();
    expect((await runJob({ sql: db.sql, records: source, models: baseline }, id)).status).toBe('cancelled');
    expect(source.calls).toEqual({});
  });

  it('stops at the token budget and counts the running cost', async () => {
    const server = await startLlmServer({ respond: pricedReply });
    try {
      const llm = { baseUrl: server.url, model: 'm', simulator: 'json' };
      const models = () =>
        selectModels(
          { baseUrl: server.url, model: 'm', concurrency: 2, timeoutMs: 5000, maxRetries: 0 },
          'json',
        );
      const id = await createJob(
        db.sql,
        spec(units('d', 4), { llm, budgetTokens: 1500, concurrency: 1, prices: GPT_4O_PRICES }),
      );
      const job = await runJob({ sql: db.sql, records: syntheticSource(), models }, id);
      // per unit: 1 explanation call (100 tokens) + 1 simulation call (1000 tokens); the budget of 1500 is
      // crossed by the second unit, so two units run and the rest are never started
      expect(job).toMatchObject({ status: 'budget_exhausted', unitsDone: 2, llmCalls: 4 });
      expect(job.promptTokens + job.completionTokens).toBe(2200);
      // by hand: 2 units × (90 + 700) prompt tokens × $2.50/M + 2 × (10 + 300) completion × $10/M
      //   = 1580 × 2.5e-6 + 620 × 1e-5 = 0.00395 + 0.0062
      expect(job.costUsd).toBeCloseTo(0.01015, 12);
      expect((await jobUnits(db.sql, id)).filter((u) => u.status === 'pending')).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('a resumed job keeps accumulating cost at the prices it was created with', async () => {
    const stop = new AbortController();
    const server = await startLlmServer({
      respond: (r) => {
        // the first unit's simulation call: stop the worker after this unit, as an interrupt would
        if (r.body.response_format && !stop.signal.aborted) stop.abort();
        return pricedReply(r);
      },
    });
    try {
      const llm = { baseUrl: server.url, model: 'm', simulator: 'json' };
      const models = () =>
        selectModels(
          // the resuming process is configured with other prices: the job's own stay in force
          {
            baseUrl: server.url,
            model: 'm',
            concurrency: 2,
            timeoutMs: 5000,
            maxRetries: 0,
            prices: UNPRICED,
          },
          'json',
        );
      const id = await createJob(db.sql, spec(units('e', 3), { llm, concurrency: 1, prices: GPT_4O_PRICES }));
      const first = await runJob({ sql: db.sql, records: syntheticSource(), models }, id, stop.signal);
      expect(first).toMatchObject({ status: 'running', unitsDone: 1, llmCalls: 2 });
      // by hand, one unit: 790 × $2.50/M + 310 × $10/M = 0.001975 + 0.0031
      expect(first.costUsd).toBeCloseTo(0.005075, 12);
      const resumed = await runJob({ sql: db.sql, records: syntheticSource(), models }, id);
      expect(resumed).toMatchObject({ status: 'done', unitsDone: 3, llmCalls: 6, prices: GPT_4O_PRICES });
      expect(resumed.costUsd).toBeCloseTo(3 * 0.005075, 12);
    } finally {
      await server.close();
    }
  });

  it('finds stored explanations by full-text search', async () => {
    const hits = await searchExplanations(db.sql, { query: 'rivers', unitPrefix: 'a/' });
    expect(hits.length).toBe(3);
    expect(hits.every((h) => h.explanation.includes('river') && h.unit.startsWith('a/'))).toBe(true);
    expect(await searchExplanations(db.sql, { query: 'river', unitPrefix: 'zzz/' })).toEqual([]);
    await expect(searchExplanations(db.sql, { query: '  ' })).rejects.toBeInstanceOf(UserInputError);
    await expect(getJob(db.sql, 'nope')).rejects.toThrow(/not a job id/);
  });
});

/** Known usage per call, for the cost tests: explanation 90 + 10 tokens, JSON simulation 700 + 300. */
function pricedReply(r: { body: { response_format?: unknown } }) {
  return r.body.response_format
    ? { content: '{"sequences":[]}', usage: { prompt_tokens: 700, completion_tokens: 300 } }
    : { content: 'Explanation: the word "river".', usage: { prompt_tokens: 90, completion_tokens: 10 } };
}
