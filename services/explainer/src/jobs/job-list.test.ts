import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNPRICED } from '../llm/cost.js';
import { EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA } from '../store/migrations.js';
import { createJob, type JobSpec, jobSources, listJobs } from './job-store.js';

// ListJobs on the embedded Postgres: newest first (ties by id), a status filter, keyset pages, and the
// sources (model/hook or model/sae-id) of each job's units.
const db = withTestDatabase(
  { beforeAll, afterAll },
  { schema: EXPLAINER_SCHEMA, migrations: EXPLAINER_MIGRATIONS_DIR },
);

const spec = (units: string[]): JobSpec => ({
  units,
  method: 'simulation',
  llm: { baseUrl: null, model: null, simulator: 'baseline' },
  budgetTokens: 0,
  concurrency: 2,
  seed: 1,
  maxAttempts: 3,
  prices: UNPRICED,
});

describe('scoring job lists', () => {
  it('list newest first (ties by id), filter by status, page with a cursor, and name unknown statuses', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await createJob(db.sql, spec([`tiny/blocks.0.mlp.hook_post/${i}`])));
    await db.sql`UPDATE scoring_jobs SET created_at = '2026-01-01T00:00:01.000001Z' WHERE id = ${ids[0]}`;
    await db.sql`UPDATE scoring_jobs SET created_at = '2026-01-01T00:00:02Z', status = 'budget_exhausted' WHERE id = ${ids[1]}`;
    await db.sql`UPDATE scoring_jobs SET created_at = '2026-01-01T00:00:03Z' WHERE id = ANY(${[ids[2], ids[3]]}::uuid[])`;
    const newestFirst = [...[ids[2], ids[3]].sort().reverse(), ids[1], ids[0]];

    const all = await listJobs(db.sql, { status: '', pageSize: 0, pageToken: '' });
    expect(all.jobs.map((j) => j.id)).toEqual(newestFirst);
    expect(all).toMatchObject({ total: 4, nextPageToken: '' });
    expect(all.jobs[3].createdAt).toBe('2026-01-01T00:00:01.000001Z');

    const seen: string[] = [];
    let token = '';
    for (let pages = 0; pages === 0 || token; pages++) {
      const page = await listJobs(db.sql, { status: '', pageSize: 1, pageToken: token });
      expect(page.jobs).toHaveLength(1);
      seen.push(page.jobs[0].id);
      token = page.nextPageToken;
    }
    expect(seen).toEqual(newestFirst);

    const exhausted = await listJobs(db.sql, { status: 'budget_exhausted', pageSize: 5, pageToken: '' });
    expect(exhausted).toMatchObject({ total: 1, jobs: [{ id: ids[1], status: 'budget_exhausted' }] });

    await expect(listJobs(db.sql, { status: 'DONE', pageSize: 0, pageToken: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown scoring job status "DONE": use one of .*budget_exhausted/),
    });
  });

  it('name the sources of each job, one per hook or SAE however many units', async () => {
    const mixed = await createJob(
      db.sql,
      spec([
        'tiny/blocks.1.mlp.hook_post/0',
        'tiny/blocks.1.mlp.hook_post/1',
        'tiny/res-1/3',
        'tiny/blocks.0.mlp.hook_post/7',
      ]),
    );
    const single = await createJob(db.sql, spec(['tiny/res-1/0']));
    const sources = await jobSources(db.sql, [mixed, single]);
    expect(sources.get(mixed)).toEqual([
      'tiny/blocks.0.mlp.hook_post',
      'tiny/blocks.1.mlp.hook_post',
      'tiny/res-1',
    ]);
    expect(sources.get(single)).toEqual(['tiny/res-1']);
    expect(await jobSources(db.sql, [])).toEqual(new Map());
  });
});
