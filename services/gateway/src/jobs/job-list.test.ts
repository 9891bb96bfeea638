import { compareJobsNewestFirst, jobCursor, parseJobCursor } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { JOB_KINDS, type JobKind, type JobView, type ListJobs, mergedJobs } from './job-list.js';

// The merge of three services' job lists, against fake lists that page like the services do.
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const at = (second: number) => `2026-01-01T00:00:${String(second).padStart(2, '0')}.000000Z`;

/** Jobs of every kind, created one second apart, a capture and a scoring job in the same microsecond. */
const JOBS: (JobView & { status: string })[] = [
  { kind: 'CAPTURE', id: uuid(1), createdAt: at(1), status: 'done' },
  { kind: 'TRAINING', id: uuid(2), createdAt: at(2), status: 'done' },
  { kind: 'SCORING', id: uuid(3), createdAt: at(3), status: 'budget_exhausted' },
  { kind: 'CAPTURE', id: uuid(4), createdAt: at(4), status: 'running' },
  { kind: 'SCORING', id: uuid(5), createdAt: at(4), status: 'queued' },
  { kind: 'TRAINING', id: uuid(6), createdAt: at(6), status: 'queued' },
];

function fakeLists(asked: JobKind[] = []): Record<JobKind, ListJobs<JobView & { status: string }>> {
  const list =
    (kind: JobKind): ListJobs<JobView & { status: string }> =>
    async ({ status, pageSize, pageToken }) => {
      asked.push(kind);
      const after = pageToken ? parseJobCursor(pageToken) : null;
      const mine = JOBS.filter((j) => j.kind === kind && (!status || j.status === status)).sort(
        compareJobsNewestFirst,
      );
      const rest = after ? mine.filter((j) => compareJobsNewestFirst(j, after) > 0) : mine;
      const jobs = rest.slice(0, pageSize);
      return {
        jobs,
        nextPageToken: rest.length > pageSize ? jobCursor(jobs.at(-1)!) : '',
        total: mine.length,
      };
    };
  return Object.fromEntries(JOB_KINDS.map((kind) => [kind, list(kind)])) as Record<
    JobKind,
    ListJobs<JobView & { status: string }>
  >;
}

describe('the merged job list', () => {
  it('pages through every kind newest first, ties by id, without repeats or gaps', async () => {
    const lists = fakeLists();
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await mergedJobs(lists, { first: 2, after });
      expect(page.totalCount).toBe(6);
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      seen.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual([uuid(6), uuid(5), uuid(4), uuid(3), uuid(2), uuid(1)]);
  });

  it('asks only the kind given, and only the kinds that have the status', async () => {
    const asked: JobKind[] = [];
    const training = await mergedJobs(fakeLists(asked), { kind: 'TRAINING' });
    expect(training.edges.map((e) => e.node.id)).toEqual([uuid(6), uuid(2)]);
    expect(asked).toEqual(['TRAINING']);
    asked.length = 0;
    const exhausted = await mergedJobs(fakeLists(asked), { status: 'budget_exhausted' });
    expect(exhausted).toMatchObject({ totalCount: 1, edges: [{ node: { id: uuid(3) } }] });
    expect(asked).toEqual(['SCORING']);
  });

  it('refuses unknown statuses, bad cursors and pages over the limit with what is allowed', async () => {
    const lists = fakeLists();
    await expect(mergedJobs(lists, { status: 'finished' })).rejects.toThrow(
      /unknown job status "finished": use one of queued, running, done, failed, cancelled \(scoring jobs also budget_exhausted\)/,
    );
    await expect(mergedJobs(lists, { kind: 'CAPTURE', status: 'budget_exhausted' })).rejects.toThrow(
      /unknown capture job status "budget_exhausted": use one of queued, running, done, failed, cancelled$/,
    );
    await expect(mergedJobs(lists, { after: 'bm9wZQ' })).rejects.toThrow(/not one a job list gave out/);
    await expect(mergedJobs(lists, { first: 101 })).rejects.toThrow(/first must be 0-100, got 101/);
  });
});
