import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CAPTURE_PARAMS } from './capture-job.js';
import { createJob } from './job-store.js';
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
