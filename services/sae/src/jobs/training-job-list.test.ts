import type { TrainRequest } from '@loupe/common/grpc';
import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAE_MIGRATIONS_DIR, SAE_SCHEMA } from '../store/migrations.js';
import { createTrainingJob, listTrainingJobs } from './training-job-store.js';

// ListTrainingJobs on the embedded Postgres: newest first (ties by id), a status filter, keyset pages.
const db = withTestDatabase({ beforeAll, afterAll }, { schema: SAE_SCHEMA, migrations: SAE_MIGRATIONS_DIR });

const request = (seed: number): TrainRequest => ({
  activationsFile: 'acts/vectors.safetensors',
  architecture: 'topk',
  width: 48,
  k: 4,
  steps: 40,
  seed,
});

describe('training job lists', () => {
  it('list newest first (ties by id), filter by status, page with a cursor, and name unknown statuses', async () => {
    const ids: string[] = [];
    for (const seed of [1, 2, 3, 4]) ids.push((await createTrainingJob(db.sql, request(seed))).id);
    await db.sql`UPDATE training_jobs SET created_at = '2026-01-01T00:00:01.000001Z' WHERE id = ${ids[0]}`;
    await db.sql`UPDATE training_jobs SET created_at = '2026-01-01T00:00:02Z', status = 'failed' WHERE id = ${ids[1]}`;
    await db.sql`UPDATE training_jobs SET created_at = '2026-01-01T00:00:03Z' WHERE id = ANY(${[ids[2], ids[3]]}::uuid[])`;
    const newestFirst = [...[ids[2], ids[3]].sort().reverse(), ids[1], ids[0]];

    const all = await listTrainingJobs(db.sql, { status: '', pageSize: 0, pageToken: '' });
    expect(all.jobs?.map((j) => j.id)).toEqual(newestFirst);
    expect(all).toMatchObject({ total: 4, nextPageToken: '' });
    expect(all.jobs?.[3].createdAt).toBe('2026-01-01T00:00:01.000001Z');

    const first = await listTrainingJobs(db.sql, { status: '', pageSize: 2, pageToken: '' });
    expect(first.jobs?.map((j) => j.id)).toEqual(newestFirst.slice(0, 2));
    const second = await listTrainingJobs(db.sql, {
      status: '',
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    expect(second.jobs?.map((j) => j.id)).toEqual(newestFirst.slice(2));
    expect(second).toMatchObject({ total: 4, nextPageToken: '' });

    const failed = await listTrainingJobs(db.sql, { status: 'failed', pageSize: 10, pageToken: '' });
    expect(failed).toMatchObject({ total: 1, jobs: [{ id: ids[1], status: 'failed' }] });
    const queued = await listTrainingJobs(db.sql, { status: 'queued', pageSize: 1, pageToken: '' });
    expect(queued.total).toBe(3);
    expect(queued.jobs?.map((j) => j.id)).toEqual(newestFirst.slice(0, 1));

    await expect(
      listTrainingJobs(db.sql, { status: 'budget_exhausted', pageSize: 0, pageToken: '' }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown training job status "budget_exhausted": use one of queued/),
    });
  });
});
