import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CAPTURE_PARAMS } from './capture-job.js';
import { createJob, listJobs } from './job-store.js';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA } from './migrations.js';

let root: string;
const db = withTestDatabase(
  { beforeAll, afterAll },
  { schema: CAPTURE_SCHEMA, migrations: CAPTURE_MIGRATIONS_DIR },
);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-capture-jobs-'));
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const job = (paramsKey: string) => ({
  model: 'tiny',
  modelSha256: 'abc',
  dataset: 'default',
  hooks: ['blocks.0.mlp.hook_post'],
  maxTokens: 1000,
  params: DEFAULT_CAPTURE_PARAMS,
  paramsKey,
  totalWindows: 16,
  totalTokens: 1000,
  windowsSha256: 'def',
});

describe('capture job rows', () => {
  it('are shared by identical requests while unfinished', async () => {
    const first = await createJob(db.sql, job('same'));
    const second = await createJob(db.sql, job('same'));
    expect(first.created).toBe(true);
    expect(second).toMatchObject({ created: false, job: { id: first.job.id, status: 'queued' } });
  });

  it('are queued again when asked for again after they failed, keeping their id and progress', async () => {
    const { job: created } = await createJob(db.sql, job('flaky'));
    await db.sql`UPDATE capture_jobs SET status = 'failed', error = 'disk full', windows_done = 4 WHERE id = ${created.id}`;
    const again = await createJob(db.sql, job('flaky'));
    expect(again).toMatchObject({
      created: false,
      job: { id: created.id, status: 'queued', error: null, windowsDone: 4 },
    });
  });
});

describe('capture job lists', () => {
  it('list newest first (ties by id), filter by status, page with a cursor, and name unknown statuses', async () => {
    await db.sql`DELETE FROM capture_jobs`;
    const ids: string[] = [];
    for (const key of ['a', 'b', 'c', 'd']) ids.push((await createJob(db.sql, job(`list-${key}`))).job.id);
    // a, b at distinct times; c and d created in the same microsecond, so the id decides
    await db.sql`UPDATE capture_jobs SET created_at = '2026-01-01T00:00:01.000001Z' WHERE id = ${ids[0]}`;
    await db.sql`UPDATE capture_jobs SET created_at = '2026-01-01T00:00:02Z', status = 'done' WHERE id = ${ids[1]}`;
    await db.sql`UPDATE capture_jobs SET created_at = '2026-01-01T00:00:03Z' WHERE id = ANY(${[ids[2], ids[3]]}::uuid[])`;
    const tied = [ids[2], ids[3]].sort().reverse();
    const newestFirst = [...tied, ids[1], ids[0]];

    const all = await listJobs(db.sql, { status: '', pageSize: 0, pageToken: '' });
    expect(all.jobs.map((j) => j.id)).toEqual(newestFirst);
    expect(all).toMatchObject({ total: 4, nextPageToken: '' });
    expect(all.jobs[3].createdAt).toBe('2026-01-01T00:00:01.000001Z');

    const seen: string[] = [];
    let token = '';
    do {
      const page = await listJobs(db.sql, { status: '', pageSize: 3, pageToken: token });
      expect(page.total).toBe(4);
      seen.push(...page.jobs.map((j) => j.id));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual(newestFirst);

    const done = await listJobs(db.sql, { status: 'done', pageSize: 10, pageToken: '' });
    expect(done).toMatchObject({ total: 1, jobs: [{ id: ids[1], status: 'done' }] });

    await expect(listJobs(db.sql, { status: 'finished', pageSize: 0, pageToken: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(
        /unknown capture job status "finished": use one of queued, running, done/,
      ),
    });
    await expect(listJobs(db.sql, { status: '', pageSize: 101, pageToken: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/page_size must be 1-100/),
    });
    await expect(listJobs(db.sql, { status: '', pageSize: 0, pageToken: 'bm9wZQ' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/not one a job list gave out/),
    });
  });
});
